"""Real walking recordings with reference events, seen by the rig's virtual cameras:
the evidence that the gait engine holds on people, not only on the simulated walker
(docs/validation.md). Entry points: :func:`load_trials` and :func:`render_tracks`."""
from .converter import RenderedReference, render_tracks, world_landmarks
from .trials import DroppedEvent, LabOutput, RealTrial, Reference, load_trial, load_trials

__all__ = ["DroppedEvent", "LabOutput", "RealTrial", "Reference", "RenderedReference", "load_trial", "load_trials",
           "render_tracks", "world_landmarks"]
