"""gaitkit 1.5.0's own detectors (PyPI ``gaitkit``; IntellEvent's ONNX weights ship in its
wheel and run on ``onnxruntime``), fed the same side-view keypoints as ours and as the
ports in event_peers.py.

gaitkit wants 3D marker positions per frame (``landmark_positions``: hip, knee, ankle,
heel, toe per side, metres, Y forward, Z up). Each foot's landmarks come from the side view
nearest it, pixels become metres through the belt's image speed (as in event_peers), and
the belt's travel ``belt * t`` is added forward so that the treadmill walk progresses as
the overground walks gaitkit was written for (its walking-direction and pelvis-relative
rules need that); X is ±0.1 m by side. Joint angles are not given (gaitkit's angle inputs
stay 0): its position-based detectors do not use them.

Nothing is downloaded: ``auto_install_deps=False`` and GAITKIT_AUTO_INSTALL_DEPS=0.
"""
from __future__ import annotations

import os

import numpy as np
from event_peers import metres_per_px

os.environ.setdefault("GAITKIT_AUTO_INSTALL_DEPS", "0")

try:
    import gaitkit
except ImportError:  # benchmarks run without it; the table then says so
    gaitkit = None

# gaitkit landmark -> BlazePose index per side (rig.gait._signals uses the same numbering)
LANDMARKS = {"hip": (23, 24), "knee": (25, 26), "ankle": (27, 28), "heel": (29, 30), "toe": (31, 32)}
# gaitkit's method id -> the published detector it implements
METHODS = {"zeni": "Zeni 2008", "oconnor": "O'Connor 2007", "hreljac": "Hreljac 2000",
           "ghoussayni": "Ghoussayni 2004", "intellevent": "IntellEvent (Dumphart 2023, learned)"}


def available() -> str | None:
    """None when gaitkit runs here, else why not."""
    if gaitkit is None:
        return "gaitkit is not installed (pip install -e '.[dev]')"
    return None


def frames(tracks, belt_m_s: float) -> tuple[list[dict], float]:
    """gaitkit angle-frame dicts and the frame rate, from the left and right side views."""
    t = tracks["left"].t_s
    if not np.array_equal(t, tracks["right"].t_s):
        raise ValueError("gaitkit needs the left and right views on the same frame times")
    per_side = {}
    for k, side in enumerate(("left", "right")):
        tr = tracks[side]
        m = metres_per_px(tr, side, belt_m_s)
        sgn = 1.0 if tr.header.facing == "right" else -1.0
        pos = {}
        for name, idx in LANDMARKS.items():
            j = idx[k]
            fwd = sgn * tr.lm[:, j, 0] * m + belt_m_s * tr.t_s
            up = -tr.lm[:, j, 1] * m
            pos[f"{side}_{name}"] = np.stack([np.full_like(fwd, 0.1 if side == "right" else -0.1), fwd, up], 1)
        per_side[side] = pos
    floor = min(np.nanmin(p[:, 2]) for s in per_side.values() for p in s.values())
    out = []
    for i in range(len(t)):
        lp = {name: (float(p[i, 0]), float(p[i, 1]), float(p[i, 2] - floor))
              for s in per_side.values() for name, p in s.items() if np.isfinite(p[i]).all()}
        out.append({"frame_index": i, "landmark_positions": lp})
    fps = 1.0 / float(np.median(np.diff(t)))
    return out, fps


def detect(method: str, tracks, belt_m_s: float):
    """({side: IC times}, {side: FO times}) from gaitkit's ``method`` on the same keypoints."""
    af, fps = frames(tracks, belt_m_s)
    res = gaitkit.detect(af, method=method, fps=fps, auto_install_deps=False)
    t0 = float(tracks["left"].t_s[0])
    ic = {s: np.array([t0 + e["frame"] / fps for e in res.hs(s)], float) for s in ("left", "right")}
    fo = {s: np.array([t0 + e["frame"] / fps for e in res.to(s)], float) for s in ("left", "right")}
    return ic, fo
