"""The gait engine: events, cycles, spatiotemporal parameters, 2D kinematics, findings and
condition comparison from the rig's keypoint views. Pure functions and classes (no I/O);
``rig.gait.cli`` is the command line. Entry point: :func:`analyze_tracks`."""
from .compare import compare_reports
from .report import GaitInputError, GaitReport, analyze_tracks

__all__ = ["GaitInputError", "GaitReport", "analyze_tracks", "compare_reports"]
