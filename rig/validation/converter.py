"""What the rig's four cameras would see of a real trial: ``gaitrig-keypoints/1`` tracks.

The markers are resampled to the camera's frame rate (cubic spline through the native
samples: the cameras sample the same continuous motion at other instants), mapped to
BlazePose landmarks (hip, knee, ankle, heel, foot index and shoulders from the markers;
face, elbows, wrists and hands, which the gait engine does not use for events, placed
rigidly on the shoulders), projected by the rig's virtual pinhole cameras
(:func:`rig.sim._camera.default_cameras`, same positions and image size as the walker's),
and given Gaussian landmark jitter in pixels, seeded per view.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from rig.keypoints import KeypointHeader, KeypointTrack
from rig.sim._body import _FACE
from rig.sim._camera import default_cameras, project

from .trials import SIDES, RealTrial, Reference

# BlazePose indices per side (subject's left = odd)
_LM = {"left": {"shoulder": 11, "hip": 23, "knee": 25, "ankle": 27, "heel": 29, "toe": 31},
       "right": {"shoulder": 12, "hip": 24, "knee": 26, "ankle": 28, "heel": 30, "toe": 32}}
# arm points relative to the shoulder (x forward, y outward, z up), metres: elbow, wrist,
# pinky, index, thumb
_ARM = {13: (0.0, 0.03, -0.29), 15: (0.03, 0.04, -0.55), 17: (0.04, 0.04, -0.63),
        19: (0.05, 0.03, -0.65), 21: (0.06, 0.02, -0.60)}
_HEAD_ABOVE_SHOULDERS_M = 0.25


@dataclass(frozen=True)
class RenderedReference:
    """True event times per side on the tracks' clock, from the trial's reference."""

    ic_s: dict[str, np.ndarray]
    fo_s: dict[str, np.ndarray]
    source: str
    belt_speed_m_s: float
    t_end_s: float

    @classmethod
    def of(cls, trial: RealTrial, t_end_s: float) -> "RenderedReference":
        ref = trial.reference or Reference({s: np.empty(0) for s in SIDES}, {s: np.empty(0) for s in SIDES},
                                           "none (trial without reference events)")
        keep = lambda a: np.asarray(a, float)[np.asarray(a, float) <= t_end_s]  # noqa: E731
        return cls({s: keep(ref.ic_s[s]) for s in SIDES}, {s: keep(ref.fo_s[s]) for s in SIDES},
                   ref.source, trial.belt_speed_m_s, t_end_s)


def world_landmarks(trial: RealTrial, t_s: np.ndarray) -> np.ndarray:
    """(n, 33, 3) BlazePose landmarks on the treadmill frame at times ``t_s``."""
    out = np.zeros((len(t_s), 33, 3))
    for (side, name), p in trial.markers.items():
        out[:, _LM[side][name]] = CubicSpline(trial.t_s, p, axis=0)(t_s)
    for side, lat in (("left", 1.0), ("right", -1.0)):
        sh = out[:, _LM[side]["shoulder"]]
        for left_idx, (x, y, z) in _ARM.items():
            out[:, left_idx if side == "left" else left_idx + 1] = sh + np.array([x, lat * y, z])
    head = 0.5 * (out[:, 11] + out[:, 12]) + np.array([0.03, 0.0, _HEAD_ABOVE_SHOULDERS_M])
    out[:, 0:11] = head[:, None, :] + _FACE[None]
    return out


def render_tracks(trial: RealTrial, fps: float, noise_px: float, seed: int):
    """(tracks, reference): ``tracks`` maps view -> :class:`KeypointTrack` for all four
    views at ``fps`` (what :func:`rig.gait.analyze_tracks` takes, with
    ``reference.belt_speed_m_s``); ``reference`` the true events per side on their clock."""
    if not fps > 0 or not noise_px >= 0:
        raise ValueError(f"fps must be > 0 and noise_px >= 0, got {fps!r}, {noise_px!r}")
    n = int(np.floor(trial.duration_s * fps + 1e-9)) + 1
    index = np.arange(n, dtype=np.int64)
    t = index / fps
    world_t = np.ascontiguousarray(world_landmarks(trial, t).transpose(2, 0, 1))
    tracks = {}
    for k, (view, cam) in enumerate(default_cameras().items()):
        lm = project(cam, world_t)
        if noise_px > 0:
            rng = np.random.default_rng([int(seed), k])
            lm[..., :2] += noise_px * rng.standard_normal(lm[..., :2].shape)
        header = KeypointHeader(view=view, fps=float(fps), width=cam.width_px, height=cam.height_px,
                                facing=cam.facing, extra={"source": f"rig.validation:{trial.name}",
                                                          "noise_px": noise_px, "seed": seed})
        tracks[view] = KeypointTrack(header, index, t, lm)
    return tracks, RenderedReference.of(trial, float(t[-1]))
