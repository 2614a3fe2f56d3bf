"""3D pipeline on the real-walking validation set (rig.validation): each trial's markers,
seen by the rig's four cameras with lens distortion and landmark noise, are triangulated,
filtered and turned into 3D angles, then compared with the markers themselves (joint
centres, our angle definitions on the true points) and with the lab's own angles where
the recording carries them (gaitkit's trials: hip, knee, ankle per frame, sagittal).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from rig.calibration.simulate import EXAMPLE_DISTORTION
from rig.sim._camera import default_cameras, visibility
from rig.validation import RealTrial, world_landmarks

from .camera import CameraModel
from .kinematics import LANDMARKS, joint_angles
from .smoothing import SavitzkyGolaySmoother
from .triangulate import Triangulator

JOINTS = ("hip", "knee", "ankle", "heel", "toe")
LAB_ANGLE = {"hip_flexion_deg": "hip_angle", "knee_flexion_deg": "knee_angle", "ankle_dorsiflexion_deg": "ankle_angle"}
_GAITKIT_FILES = {"healthy": "gaitkit_example_healthy.json", "parkinson": "gaitkit_example_parkinson.json",
                  "stroke": "gaitkit_example_stroke.json"}


def rig_cameras() -> dict[str, CameraModel]:
    """The simulated rig's four cameras with their lens distortion."""
    return {k: CameraModel.from_sim(c, dist=EXAMPLE_DISTORTION[k]) for k, c in default_cameras().items()}


def observe(world_m: np.ndarray, cams: dict[str, CameraModel], noise_px: float,
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """(n, 33, 3) world landmarks -> per view (n, 33, 4) [x_px, y_px, 0, visibility] as a
    pose model would give them: distorted projection, Gaussian noise, the simulator's
    visibility (the far side of the body lower in side views)."""
    sim = default_cameras()
    out = {}
    for view, cam in cams.items():
        uv = cam.project(world_m) + rng.normal(0.0, noise_px, world_m.shape[:2] + (2,))
        lm = np.zeros(world_m.shape[:2] + (4,))
        lm[..., :2] = uv
        lm[..., 3] = visibility(sim[view], uv[..., 0], uv[..., 1])
        out[view] = lm
    return out


def lab_angles(trial: RealTrial) -> dict[tuple[str, str], np.ndarray] | None:
    """The lab's per-frame angles (deg) at the trial's native frames, or None (gaitkit only)."""
    if trial.name not in _GAITKIT_FILES:
        return None
    from edge_models.fetch import validation_path
    doc = json.loads(validation_path(_GAITKIT_FILES[trial.name]).read_text(encoding="utf-8"))
    frames = doc["angle_frames"][: len(trial.t_s)]
    return {(side, ours): np.array([f.get(f"{side}_{lab}", np.nan) for f in frames], float)
            for side in ("left", "right") for ours, lab in LAB_ANGLE.items()}


@dataclass
class TrialResult:
    name: str
    n_frames: int
    joint_error_mm: dict[str, float]  # median per joint over both sides
    angle_rmse_deg: dict[str, float]  # 3D (triangulated) vs the same definition on the markers
    lab_rmse_deg: dict[str, float] = field(default_factory=dict)  # vs the lab, after its mean offset
    lab_offset_deg: dict[str, float] = field(default_factory=dict)  # mean (lab - ours)
    lab_rmse_markers_deg: dict[str, float] = field(default_factory=dict)  # markers' own angles vs the lab
    lab_sign: dict[str, int] = field(default_factory=dict)  # -1 where the lab counts the other way
    lab_corr: dict[str, float] = field(default_factory=dict)  # |r| < 0.8: not the same angle, not scored
    eversion_stance_error_deg: list[float] = field(default_factory=list)  # per stride, 10-45 % window mean


STANCE_WINDOW = (0.10, 0.45)  # fraction of the stride from initial contact: loading to midstance
MIN_LAB_CORRELATION = 0.8


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2)))


def evaluate(trial: RealTrial, noise_px: float = 1.5, seed: int = 0,
             cams: dict[str, CameraModel] | None = None) -> TrialResult:
    """One trial at its native frame rate (so the lab's angle frames line up)."""
    cams = cams or rig_cameras()
    fps = trial.native_fps
    world = world_landmarks(trial, trial.t_s)
    views = observe(world, cams, noise_px, np.random.default_rng(seed))
    est = SavitzkyGolaySmoother().smooth(Triangulator(cams).triangulate(views).points_m, fps)
    joint_err = {j: float(np.nanmedian(np.concatenate(
        [1000 * np.linalg.norm(est[:, LANDMARKS[s][j]] - world[:, LANDMARKS[s][j]], axis=-1) for s in LANDMARKS])))
        for j in JOINTS}
    res = TrialResult(trial.name, len(trial.t_s), joint_err, {})
    lab = lab_angles(trial)
    for side in ("left", "right"):
        a_est, a_true = joint_angles(est, side), joint_angles(world, side)
        for k in a_est:
            res.angle_rmse_deg[f"{side} {k}"] = _rmse(a_est[k], a_true[k])
        for k in LAB_ANGLE if lab else ():
            _compare_lab(res, f"{side} {k}", lab[(side, k)], a_est[k], a_true[k])
        if trial.reference is not None:
            res.eversion_stance_error_deg += _stance_errors(trial.t_s, trial.reference.ic_s[side],
                                                            a_est["rearfoot_eversion_deg"],
                                                            a_true["rearfoot_eversion_deg"])
    return res


def _compare_lab(res: TrialResult, key: str, ref: np.ndarray, ours: np.ndarray, markers: np.ndarray) -> None:
    """Lab angle against ours after the lab's sign convention (the sign that fits) and mean offset."""
    ok = np.isfinite(ref) & np.isfinite(ours)
    r = float(np.corrcoef(ref[ok], ours[ok])[0, 1])
    sign = 1 if r >= 0 else -1
    off = float(np.mean(ref[ok] - sign * ours[ok]))
    res.lab_sign[key], res.lab_corr[key], res.lab_offset_deg[key] = sign, abs(r), off
    res.lab_rmse_deg[key] = _rmse(sign * ours + off, ref)
    res.lab_rmse_markers_deg[key] = _rmse(sign * markers + float(np.nanmean(ref - sign * markers)), ref)


def _stance_errors(t_s: np.ndarray, ic_s: np.ndarray, est: np.ndarray, truth: np.ndarray) -> list[float]:
    """|mean estimated - mean true| over each stride's 10-45 % window (what the report averages)."""
    out = []
    for a, b in zip(ic_s[:-1], ic_s[1:]):
        w = (t_s >= a + STANCE_WINDOW[0] * (b - a)) & (t_s <= a + STANCE_WINDOW[1] * (b - a))
        if w.sum() >= 3:
            out.append(float(abs(np.nanmean(est[w]) - np.nanmean(truth[w]))))
    return out
