"""What the toe-tip stand-in costs at foot off: on feet that carry a hallux marker beside the
metatarsal ones, when each forefoot marker's forward velocity rises through the engine's
foot-off level, relative to the hallux's.

BlazePose's foot_index is the toe tip. No plate trial of the event set has a toe-tip marker
(the GaitAnalysisToolKit plate trial's toe is RMT5, the 5th metatarsal head; the split-belt
trial's is Plug-in Gait's TOE on the 2nd metatarsal head), and a metatarsal head lifts off
the ground before the toes do. Two public recordings have a hallux marker but no plate data:

- ``pyc3dsample`` 0.0.5 (MIT): two overground trials of one healthy adult (1.74 m, 86 kg),
  Vicon Nexus 2.18, marker set "PIG-LMR-AI-FB" = full-body Plug-in Gait + medial malleolus,
  medial epicondyle and ``xBTO`` (big toe) markers, 100 Hz; 1.40 and 0.58 m/s. The file's
  force-plate channels are all zero and its kinetics only inertial: no events.
- ``openofm`` 1.1.3: the Oxford Foot Model trial already used for the 3D checks
  (``HLX`` hallux, ``TOE`` between the 2nd and 3rd metatarsal heads, ``D5M`` 5th metatarsal
  head), 100 Hz, 1.21 m/s.

Velocities are the native markers' cubic-spline derivatives on the treadmill frame (ground
speed minus the walking speed, in walking speeds), as :mod:`benchmarks.diag_events_bound`
times them; no camera, noise or filter. docs/validation.md has the figures.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

from edge_models.fetch import validation_path
from rig.gait._signals import level_crossings

from .c3d_trials import marker_points, read_c3d

FOOT_OFF_LEVEL = 0.0  # the engine's foot off: the toe's image velocity rises through zero
PLANTED = -0.8  # below this (walking speeds) the hallux rides the "belt": the foot is planted
SWINGING = 0.5  # above this it is in swing
SEARCH_S = 0.1  # a marker's crossing farther than this from the hallux's is another push-off
EDGE_S = 0.05  # crossings this near the recording's edges are not timed
_STEP_S = 0.001


@dataclass(frozen=True)
class _Source:
    file: str
    hallux: str  # C3D label without the side prefix
    others: dict[str, str]  # what the marker is -> label


FOREFOOT_TRIALS = {
    "pig_hallux_1": _Source("pyc3dsample_testsample.c3d", "BTO", {"MT2 (Plug-in Gait TOE)": "TOE"}),
    "pig_hallux_2": _Source("pyc3dsample_testsample2.c3d", "BTO", {"MT2 (Plug-in Gait TOE)": "TOE"}),
    "ofm_overground": _Source("openofm_dynamic_processed.c3d", "HLX",
                              {"MT2-3 (OFM TOE)": "TOE", "MT5 head (OFM D5M)": "D5M"}),
}


@dataclass(frozen=True)
class PushOff:
    """One push-off: the hallux's crossing time and each other marker's lag behind it (ms;
    negative = the marker reaches the level first, so a rule timed on it calls foot off early)."""

    side: str
    hallux_s: float
    lag_ms: dict[str, float]


def push_off_lags(t_s: np.ndarray, u: dict[str, np.ndarray], hallux: str,
                  level: float = FOOT_OFF_LEVEL) -> list[tuple[float, dict[str, float]]]:
    """Pure: ``u[name]`` is each marker's forward velocity (treadmill frame, walking speeds)
    sampled at ``t_s``. A push-off is the hallux rising from planted (< PLANTED) into swing
    (> SWINGING); its time is the hallux's last upward crossing of ``level`` in between, and
    each other marker's lag is its own crossing nearest to that (within SEARCH_S). Crossings
    within EDGE_S of the recording's edges are left out."""
    h = u[hallux]
    out = []
    i = 0
    while True:
        planted = np.flatnonzero(h[i:] < PLANTED)
        if not len(planted):
            break
        a = i + int(planted[0])
        up = np.flatnonzero(h[a:] > SWINGING)
        if not len(up):
            break
        b = a + int(up[0])
        i = b + 1
        c = level_crossings(t_s[a:b + 1], h[a:b + 1], level, +1)[1]
        if not len(c) or c[-1] < t_s[0] + EDGE_S or c[-1] > t_s[-1] - EDGE_S:
            continue
        th = float(c[-1])
        lags = {}
        for name, x in u.items():
            if name == hallux:
                continue
            cand = level_crossings(t_s, x, level, +1)[1]
            cand = cand[np.abs(cand - th) <= SEARCH_S]
            lags[name] = float(1e3 * (cand[np.argmin(np.abs(cand - th))] - th)) if len(cand) else float("nan")
        out.append((th, lags))
    return out


def forefoot_push_offs(name: str, directory: Path | None = None,
                       level: float = FOOT_OFF_LEVEL) -> tuple[float, list[PushOff]]:
    """(walking speed m/s, every push-off of both feet) of one trial of
    :data:`FOREFOOT_TRIALS`, read from the cache. Forward is the pelvis' (ASIS midpoint's)
    horizontal travel from the first frame to the last; the walking speed is its
    straight-line fit."""
    if name not in FOREFOOT_TRIALS:
        raise KeyError(f"unknown forefoot trial {name!r}; known: {', '.join(FOREFOOT_TRIALS)}")
    src = FOREFOOT_TRIALS[name]
    path = validation_path(src.file, directory)
    c, _, labels, rate = read_c3d(path)
    pelvis = 0.5 * (marker_points(c, labels, "LASI", path) + marker_points(c, labels, "RASI", path)) / 1000.0
    t = np.arange(len(pelvis)) / rate
    d = pelvis[-1, :2] - pelvis[0, :2]
    fwd = np.r_[d / np.linalg.norm(d), 0.0]
    speed = float(np.polyfit(t, pelvis @ fwd, 1)[0])
    tt = np.arange(t[0], t[-1], _STEP_S)
    out = []
    for side, prefix in (("left", "L"), ("right", "R")):
        labels_by_name = {"hallux": src.hallux, **src.others}
        u = {n: CubicSpline(t, marker_points(c, labels, prefix + lab, path) @ fwd / 1000.0)(tt, 1) / speed - 1.0
             for n, lab in labels_by_name.items()}
        out += [PushOff(side, th, lags) for th, lags in push_off_lags(tt, u, "hallux", level)]
    return speed, sorted(out, key=lambda p: p.hallux_s)
