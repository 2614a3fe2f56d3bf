"""Re-recording simulation: the same walk analysed again with only the measurement error
re-drawn (landmark noise, dropped frames, left/right label swaps), at the camera's frame
rate. The repeatability table (``benchmarks/bench_repeatability.py``) and the honest-
comparison tests (``tests/test_compare_honest.py``) record sessions through here.

``walk_seed`` fixes the walk (stride-to-stride variability, drift); ``draw`` picks the
measurement error (the walker's ``artifact_seed``). Landmark noise: 2 px SD per coordinate,
above the 1.5 px the real-walking validation set uses for the jitter of the pose model on
real video; 2 % of frames with nobody (runs of 50 ms) and 2 % of side-view frames with
swapped labels (runs of 150 ms), as the walker benchmark grid's milder half.
"""
from __future__ import annotations

import math

from rig.gait import analyze_tracks
from rig.gait.estimates import session_estimates
from rig.keypoints import VIEWS

from .walker import SimulatedWalker, WalkerParams

FPS = 60.0
DURATION_S = 40.0
MEASUREMENT_ERROR = {"noise_px": 2.0, "missing_fraction": 0.02, "swap_fraction": 0.02}
DRAW_SEED_BASE = 1_000_003  # artifact seeds: DRAW_SEED_BASE * walk_seed + draw (never a walk seed)


def walker_report(walk: dict, walk_seed: int, draw: int, duration_s: float = DURATION_S, fps: float = FPS) -> dict:
    """Analysed report of one recording: walker knobs ``walk`` (WalkerParams fields without
    the measurement error), the walk ``walk_seed``, the measurement-error ``draw``."""
    params = WalkerParams(**{**walk, **MEASUREMENT_ERROR})
    w = SimulatedWalker(params, fps=fps, seed=walk_seed, artifact_seed=DRAW_SEED_BASE * walk_seed + draw)
    tracks = {v: w.track(v, duration_s) for v in VIEWS}
    return analyze_tracks(tracks, params.belt_speed_m_s).to_dict()


def values(report: dict) -> dict[str, float]:
    """Measure key -> the session's value (NaN where not measured)."""
    return {k: (e.value if e.n else math.nan) for k, e in session_estimates(report).items()}
