"""3D pipeline on the real-walking validation set (rig.validation): each trial's markers,
seen by the rig's four cameras with lens distortion and landmark noise, are triangulated,
filtered and turned into 3D angles, then compared with the markers themselves (joint
centres, our angle definitions on the true points) and with the angles the recording
carries — judged for what they are (docs/3d.md, "Evidence"):

* ``stroke`` (Van Criekinge et al. 2023): the lab's own model, Vicon Plug-in Gait
  (gaitkit copies ``LHipAngles``… component X from the C3D). Plug-in Gait's hip flexion is
  the thigh in the *tilted* pelvis; ours is the thigh in an untilted pelvis (a pose model
  has no pelvic landmark off the hip line), so ours is compared with the lab's hip flexion
  less the lab's own pelvic tilt (``pelvis_tilt``, ``LPelvisAngles`` X, in the file). Knee
  and ankle as they are; Plug-in Gait's ankle applies the static trial's foot offset, which
  makes its foot axis the heel→toe line as ours. No constant is fitted on the trial.
* ``healthy``, ``parkinson``: the file's "angles" are gaitkit's own three-point angles of
  the very markers in the file (knee = 180° − ∠hip-knee-ankle, ankle = ∠knee-ankle-toe −
  90°, "hip" = the thigh against the lab's −z; reproduced to 1e-4°), not a lab model. They
  are compared with the same formula on our triangulated points (a check of the points,
  not of a joint model); the "hip" is not, as those labs' z is not vertical.

* C3D trials (``trial.lab``, rig.validation.c3d_trials): the landmarks are the lab
  model's own joint centres and the angles its own (Plug-in Gait component X; hip less
  pelvic tilt as above).

Rearfoot eversion: the reference is the same definition on the markers where they define
it (:func:`rearfoot_defined`); against a lab rearfoot angle only where one exists (the
Oxford Foot Model's hindfoot–tibia angle, :func:`hindfoot_check`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from rig.calibration.simulate import EXAMPLE_DISTORTION
from rig.sim._camera import default_cameras, visibility
from rig.validation import RealTrial, world_landmarks

from .camera import CameraModel
from .kinematics import LANDMARKS, jcs_angles, joint_angles, rearfoot_eversion
from .smoothing import SavitzkyGolaySmoother
from .triangulate import Triangulator

JOINTS = ("hip", "knee", "ankle", "heel", "toe")
SAGITTAL = ("hip_flexion_deg", "knee_flexion_deg", "ankle_dorsiflexion_deg")
_FILE_ANGLE = {"hip_flexion_deg": "hip_angle", "knee_flexion_deg": "knee_angle", "ankle_dorsiflexion_deg": "ankle_angle"}
_GAITKIT_FILES = {"healthy": "gaitkit_example_healthy.json", "parkinson": "gaitkit_example_parkinson.json",
                  "stroke": "gaitkit_example_stroke.json"}
LAB_MODELS = {"stroke": "Vicon Plug-in Gait (hip = PiG hip flexion - PiG pelvic tilt)"}
THREE_POINT = ("healthy", "parkinson")  # gaitkit's three-point angles of the file's markers
STANCE_WINDOW = (0.10, 0.45)  # fraction of the stride from initial contact: loading to midstance
REARFOOT_RANGE_DEG = 30.0  # a rearfoot angle beyond this (the report's human range) is not one
BLAZEPOSE_HEEL_BELOW_ANKLE_M = 0.06  # roughly where a pose model's heel point sits


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


def _file_frames(trial: RealTrial) -> list[dict] | None:
    if trial.name not in _GAITKIT_FILES:
        return None
    from edge_models.fetch import validation_path
    doc = json.loads(validation_path(_GAITKIT_FILES[trial.name]).read_text(encoding="utf-8"))
    return doc["angle_frames"][: len(trial.t_s)]


def lab_angles(trial: RealTrial) -> dict[tuple[str, str], np.ndarray] | None:
    """The lab model's sagittal angles (deg) in our definitions at the trial's frames, or
    None when the recording carries no lab model (:data:`LAB_MODELS`, or a C3D trial's
    ``trial.lab``: Plug-in Gait's component X, hip less its pelvic tilt as for ``stroke``)."""
    if trial.lab is not None:
        a = trial.lab.angles_deg
        return {(s, k): a[(s, k)] - (a[(s, "pelvis_tilt_deg")] if k == "hip_flexion_deg" else 0.0)
                for s in ("left", "right") for k in SAGITTAL}
    frames = _file_frames(trial) if trial.name in LAB_MODELS else None
    if frames is None:
        return None
    col = lambda key: np.array([f.get(key, np.nan) for f in frames], float)  # noqa: E731
    tilt = col("pelvis_tilt")  # Plug-in Gait pelvic tilt, anterior +
    return {(s, ours): col(f"{s}_{lab}") - (tilt if ours == "hip_flexion_deg" else 0.0)
            for s in ("left", "right") for ours, lab in _FILE_ANGLE.items()}


def three_point_angles(points_m: np.ndarray, side: str) -> dict[str, np.ndarray]:
    """gaitkit's knee and ankle angles (deg) of the points: knee 180° − ∠hip-knee-ankle,
    ankle ∠knee-ankle-toe − 90° (plantarflexion +)."""
    lm = LANDMARKS[side]

    def at(a, b, c):
        u, v = points_m[:, lm[a]] - points_m[:, lm[b]], points_m[:, lm[c]] - points_m[:, lm[b]]
        cos = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return {"knee_flexion_deg": 180.0 - at("hip", "knee", "ankle"), "ankle_dorsiflexion_deg": at("knee", "ankle", "toe") - 90.0}


def rearfoot_defined(world_m: np.ndarray, trial: RealTrial) -> str | None:
    """None when the trial's markers define a rearfoot angle, else why not.

    The heel→ankle line across the foot is a rearfoot line only when the heel point lies
    well below the ankle point (a pose model's heel ~6 cm below its ankle). A sagittal
    record has no frontal information at all; a heel marker at the height of a lateral
    malleolus marker makes the line run across the foot, and the markers' "angle" is then
    far outside any rearfoot angle (beyond ±30°)."""
    if trial.setting == "treadmill" and "left leg" in trial.marker_for:
        return ("sagittal-only record (x, z): every lateral coordinate is a nominal constant, so the markers "
                "carry no frontal-plane motion")
    for side in ("left", "right"):
        lm = LANDMARKS[side]
        drop_m = float(np.median(world_m[:, lm["ankle"], 2] - world_m[:, lm["heel"], 2]))
        angle = float(np.nanmedian(rearfoot_eversion(world_m, side)))
        if abs(angle) > REARFOOT_RANGE_DEG:
            return (f"the heel marker lies only {1000 * drop_m:.0f} mm below the ankle marker ({side}; a pose "
                    f"model's heel ~{100 * BLAZEPOSE_HEEL_BELOW_ANKLE_M:.0f} cm): the heel-ankle line runs across the "
                    f"foot and the markers' angle is {angle:+.0f}°, not a rearfoot angle")
    return None


@dataclass
class TrialResult:
    name: str
    n_frames: int
    joint_error_mm: dict[str, float]  # median per joint over both sides
    angle_rmse_deg: dict[str, float]  # 3D (triangulated) vs the same definition on the markers
    lab_model: str | None = None
    lab_rmse_deg: dict[str, float] = field(default_factory=dict)  # triangulated vs the lab model, raw
    lab_bias_deg: dict[str, float] = field(default_factory=dict)  # mean (ours - lab)
    lab_rmse_markers_deg: dict[str, float] = field(default_factory=dict)  # the markers' own angles vs the lab
    file_angle_rmse_deg: dict[str, float] = field(default_factory=dict)  # gaitkit 3-point on our points vs the file
    rearfoot_excluded: str | None = None  # why the markers cannot define the rearfoot
    eversion_stance_error_deg: list[float] = field(default_factory=list)  # per stride, 10-45 % window mean
    knee_crosstalk: dict[str, "KneeCrosstalk"] = field(default_factory=dict)  # per side, where the lab keeps its axes


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2)))


def _triangulated(trial: RealTrial, noise_px: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(markers' landmarks, triangulated and filtered) of a trial at its native rate, the
    rig's cameras with ``noise_px`` landmark noise."""
    cams = rig_cameras()
    world = world_landmarks(trial, trial.t_s)
    est = SavitzkyGolaySmoother().smooth(
        Triangulator(cams).triangulate(observe(world, cams, noise_px, np.random.default_rng(seed))).points_m,
        trial.native_fps)
    return world, est


def evaluate(trial: RealTrial, noise_px: float = 1.5, seed: int = 0,
             cams: dict[str, CameraModel] | None = None) -> TrialResult:
    """One trial at its native frame rate (so the file's angle frames line up)."""
    cams = cams or rig_cameras()
    fps = trial.native_fps
    world = world_landmarks(trial, trial.t_s)
    views = observe(world, cams, noise_px, np.random.default_rng(seed))
    est = SavitzkyGolaySmoother().smooth(Triangulator(cams).triangulate(views).points_m, fps)
    joint_err = {j: float(np.nanmedian(np.concatenate(
        [1000 * np.linalg.norm(est[:, LANDMARKS[s][j]] - world[:, LANDMARKS[s][j]], axis=-1) for s in LANDMARKS])))
        for j in JOINTS}
    res = TrialResult(trial.name, len(trial.t_s), joint_err, {},
                      lab_model=trial.lab.model if trial.lab is not None else LAB_MODELS.get(trial.name),
                      rearfoot_excluded=rearfoot_defined(world, trial))
    lab = lab_angles(trial)
    frames = _file_frames(trial) if trial.name in THREE_POINT else None
    for side in ("left", "right"):
        a_est, a_true = joint_angles(est, side), joint_angles(world, side)
        for k in a_est:
            if k == "rearfoot_eversion_deg" and res.rearfoot_excluded:
                continue
            res.angle_rmse_deg[f"{side} {k}"] = _rmse(a_est[k], a_true[k])
        for k in SAGITTAL if lab else ():
            key = f"{side} {k}"
            res.lab_rmse_deg[key] = _rmse(a_est[k], lab[(side, k)])
            res.lab_bias_deg[key] = float(np.nanmean(a_est[k] - lab[(side, k)]))
            res.lab_rmse_markers_deg[key] = _rmse(a_true[k], lab[(side, k)])
        if trial.lab is not None and (side, "femur") in trial.lab.frames:
            res.knee_crosstalk[side] = knee_crosstalk(trial.lab.frames[(side, "femur")],
                                                      trial.lab.frames[(side, "tibia")], side,
                                                      a_est["knee_flexion_deg"], a_true["knee_flexion_deg"])
        if frames is not None:
            for k, v in three_point_angles(est, side).items():
                ref = np.array([f[f"{side}_{_FILE_ANGLE[k]}"] for f in frames], float)
                res.file_angle_rmse_deg[f"{side} {k}"] = _rmse(v, ref)
        if trial.reference is not None and not res.rearfoot_excluded:
            res.eversion_stance_error_deg += stance_errors(trial.t_s, trial.reference.ic_s[side],
                                                           a_est["rearfoot_eversion_deg"],
                                                           a_true["rearfoot_eversion_deg"])
    return res


def stance_errors(t_s: np.ndarray, ic_s: np.ndarray, est: np.ndarray, truth: np.ndarray) -> list[float]:
    """|mean estimated - mean true| over each stride's 10-45 % window (what the report
    averages per stride). A gap of more than 1.5 median strides is not a stride (a dropped
    reference contact lies in it) and is skipped."""
    out = []
    gaps = np.diff(ic_s)
    for a, b in zip(ic_s[:-1], ic_s[1:]):
        if b - a > 1.5 * np.median(gaps):
            continue
        w = (t_s >= a + STANCE_WINDOW[0] * (b - a)) & (t_s <= a + STANCE_WINDOW[1] * (b - a))
        if w.sum() >= 3:
            out.append(float(abs(np.nanmean(est[w]) - np.nanmean(truth[w]))))
    return out


@dataclass
class RearfootCheck:
    """The walker's rearfoot eversion through the 3D pipeline against its own landmarks."""

    set_deg: dict[str, float]  # the walker's parameter (a rear-view image angle)
    per_frame_rmse_deg: dict[str, float]  # frames inside the strides' 10-45 % windows (stance)
    per_stride_error_deg: dict[str, list[float]]  # |estimated - true| stance mean, per stride
    true_mean_deg: dict[str, float]  # the 3D definition on the walker's landmarks, stance mean


def walker_rearfoot(eversion_deg: dict[str, float], duration_s: float = 20.0, fps: float = 60.0,
                    noise_px: float = 1.5, seed: int = 0) -> RearfootCheck:
    """The simulated walker (heel point below the ankle as a pose model places it; the
    only recording here whose rearfoot is defined) seen by the four cameras with
    ``noise_px`` landmark noise, triangulated and filtered; its rearfoot eversion per frame
    and per stride (mean over 10–45 % of the stride) against the same definition on its
    true landmarks."""
    from rig.sim.walker import SimulatedWalker, WalkerParams
    w = SimulatedWalker(WalkerParams(noise_px=noise_px, rearfoot_eversion_left_deg=eversion_deg["left"],
                                     rearfoot_eversion_right_deg=eversion_deg["right"]), fps=fps, seed=seed)
    index = np.arange(w.n_frames(duration_s))
    t = index / fps
    truth = w.world(index)
    cams = {v: CameraModel.from_sim(c) for v, c in w.cameras_.items()}
    est = SavitzkyGolaySmoother().smooth(Triangulator(cams).triangulate(
        {v: w.landmarks(v, index) for v in cams}).points_m, fps)
    ic = w.truth(0.0, float(t[-1])).heel_strike_s
    out = RearfootCheck(dict(eversion_deg), {}, {}, {})
    for side in ("left", "right"):
        e, tr = rearfoot_eversion(est, side), rearfoot_eversion(truth, side)
        wins = [(t >= a + STANCE_WINDOW[0] * (b - a)) & (t <= a + STANCE_WINDOW[1] * (b - a))
                for a, b in zip(ic[side][:-1], ic[side][1:])]
        stance = np.any(wins, axis=0)  # in swing the heel rises to the ankle: no rearfoot line
        out.per_frame_rmse_deg[side] = _rmse(e[stance], tr[stance])
        out.per_stride_error_deg[side] = stance_errors(t, ic[side], e, tr)
        out.true_mean_deg[side] = float(np.mean([np.mean(tr[m]) for m in wins]))
    return out


@dataclass
class StepCheck:
    """3D step length and width from ``analyze_tracks`` (calibrated) against the markers."""

    name: str
    n_steps: dict[str, int]  # the markers' steps (reference events) per side
    step_length_3d_m: dict[str, float]  # report means per side
    step_length_markers_m: dict[str, float]  # the same definition on the markers at the reference events
    step_length_2d_m: dict[str, float]  # belt speed x step time (the 2D table)
    step_width_3d_m: float
    step_width_markers_m: float
    why_not: str | None = None

    def __str__(self) -> str:
        if self.why_not:
            return f"not scored: {self.why_not}"
        f = lambda d: "/".join(f"{1000 * d[s]:.0f}" for s in ("left", "right"))  # noqa: E731
        err = {s: 1000 * (self.step_length_3d_m[s] - self.step_length_markers_m[s]) for s in ("left", "right")}
        err2 = {s: 1000 * (self.step_length_2d_m[s] - self.step_length_markers_m[s]) for s in ("left", "right")}
        return (f"step length L/R mm: 3D {f(self.step_length_3d_m)}, markers {f(self.step_length_markers_m)} "
                f"(3D error {err['left']:+.0f}/{err['right']:+.0f}; 2D belt x time {f(self.step_length_2d_m)}, "
                f"error {err2['left']:+.0f}/{err2['right']:+.0f}); step width 3D {1000 * self.step_width_3d_m:.0f}, "
                f"markers {1000 * self.step_width_markers_m:.0f} mm; steps {self.n_steps['left']}/{self.n_steps['right']}")


def step_check(trial: RealTrial, fps: float = 100.0, noise_px: float = 1.5, seed: int = 0) -> StepCheck:
    """The trial rendered for the four cameras (rig.validation.render_tracks), analysed
    with the calibration, against the markers' steps at the reference events: step length
    = landing heel x − other heel x + belt speed × step time on the treadmill frame (on an
    overground trial that is the distance between the heel strikes on the ground), step
    width = the heels' distance across."""
    from rig.gait import analyze_tracks
    from rig.validation import render_tracks

    from .kinematics import steps_3d
    if trial.reference is None:
        return StepCheck(trial.name, {}, {}, {}, {}, float("nan"), float("nan"),
                         why_not="no reference events (heel strikes) to place the markers' steps")
    tracks, ref = render_tracks(trial, fps, noise_px, seed)
    cams = {k: CameraModel.from_sim(c) for k, c in default_cameras().items()}  # the tracks' ideal pinholes
    rep = analyze_tracks(tracks, trial.belt_speed_m_s, cams).to_dict()
    sm = rep["kinematics"]["3d"]["summary"]
    ic = {s: ref.ic_s[s] for s in ("left", "right")}
    stride = np.median(np.concatenate([np.diff(ic[s]) for s in ic if len(ic[s]) > 1]))
    truth = steps_3d(world_landmarks(trial, trial.t_s), trial.t_s, ic, trial.belt_speed_m_s, 0.75 * stride)
    sides = ("left", "right")
    num = lambda x: float("nan") if x is None else float(x)  # noqa: E731 (the report's JSON null)
    return StepCheck(
        trial.name, {s: len(truth[s]["step_length_m"]) for s in sides},
        {s: num(sm["step_length_3d_m"][s]["mean"]) for s in sides},
        {s: float(np.mean(truth[s]["step_length_m"])) if truth[s]["step_length_m"] else float("nan") for s in sides},
        {s: num(rep["spatiotemporal"]["step_length_m"][s]) for s in sides},
        num(sm["step_width_3d_m"]["mean"]),
        float(np.mean(truth["left"]["step_width_m"] + truth["right"]["step_width_m"])))


# Davis et al. 1991 (Plug-in Gait's hip joint centre), pelvis frame: origin mid-ASIS,
# X forward (mid-PSIS to mid-ASIS), Y left, Z up; millimetres as published.
_DAVIS_THETA, _DAVIS_BETA, _MARKER_RADIUS_MM = 0.5, 0.314, 7.0


def _davis_offset_mm(leg_mm: float, half_asis_mm: float,
                     marker_radius_mm: float = _MARKER_RADIUS_MM) -> tuple[float, float, float]:
    """The hip centre from mid-ASIS in the pelvis frame (X forward, Y toward the side, Z up), mm."""
    c = 0.115 * leg_mm - 15.3
    trochanter = 0.1288 * leg_mm - 48.56 + marker_radius_mm
    return (c * np.cos(_DAVIS_THETA) * np.sin(_DAVIS_BETA) - trochanter * np.cos(_DAVIS_BETA),
            half_asis_mm - c * np.sin(_DAVIS_THETA),
            -c * np.cos(_DAVIS_THETA) * np.cos(_DAVIS_BETA) - trochanter * np.sin(_DAVIS_BETA))


def davis_hips(trial: RealTrial, world_m: np.ndarray, pelvic_depth_m: float) -> np.ndarray | None:
    """The stroke file's hip points ((ASIS + PSIS) / 2 per side) replaced by Davis hip
    joint centres, for a sensitivity check only (docs/3d.md): the pelvis is rebuilt from
    the two midpoints (its Y) and the file's Plug-in Gait pelvic tilt (its X); the file
    lacks the pelvis dimensions, so ``pelvic_depth_m`` (mid-ASIS to mid-PSIS) is assumed,
    the inter-ASIS distance is taken as the midpoints' spacing (it moves the centre
    sideways only) and leg length as the thigh + shank marker lengths. None for a trial
    without a pelvic tilt."""
    frames = _file_frames(trial) if trial.name in LAB_MODELS else None
    if frames is None:
        return None
    tilt = np.radians([f["pelvis_tilt"] for f in frames])[:, None]
    hl, hr = world_m[:, LANDMARKS["left"]["hip"]], world_m[:, LANDMARKS["right"]["hip"]]
    y = hl - hr
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    x0 = np.array([1.0, 0.0, 0.0]) - y[:, :1] * y
    x0 /= np.linalg.norm(x0, axis=1, keepdims=True)
    z0 = np.cross(x0, y)
    x = np.cos(tilt) * x0 - np.sin(tilt) * z0  # anterior tilt: the front of the pelvis down
    z = np.cross(x, y)
    lm = LANDMARKS["left"]
    leg_mm = 1000 * float(np.median(np.linalg.norm(world_m[:, lm["hip"]] - world_m[:, lm["knee"]], axis=1)
                                    + np.linalg.norm(world_m[:, lm["knee"]] - world_m[:, lm["ankle"]], axis=1)))
    xd, yd, zd = _davis_offset_mm(leg_mm, 500 * float(np.median(np.linalg.norm(hl - hr, axis=1))))
    origin = 0.5 * (hl + hr) + 0.5 * pelvic_depth_m * x
    out = world_m.copy()
    for side, sign in (("left", 1.0), ("right", -1.0)):
        out[:, LANDMARKS[side]["hip"]] = origin + (xd * x + sign * yd * y + zd * z) / 1000
    return out


def davis_sensitivity(trial: RealTrial, depths_m=(0.15, 0.18, 0.21)) -> dict[float, dict[str, tuple[float, float, float]]]:
    """Per assumed pelvic depth: key -> (RMSE, mean ours − lab, SD of the difference) of
    the markers' hip and knee flexion (Davis hips) against Plug-in Gait; {} without a lab."""
    lab = lab_angles(trial)
    if lab is None:
        return {}
    world = world_landmarks(trial, trial.t_s)
    out = {}
    for d in depths_m:
        pts = davis_hips(trial, world, d)
        row = {}
        for side in ("left", "right"):
            a = joint_angles(pts, side)
            for k in ("hip_flexion_deg", "knee_flexion_deg"):
                diff = a[k] - lab[(side, k)]
                row[f"{side} {k}"] = (_rmse(a[k], lab[(side, k)]), float(np.nanmean(diff)), float(np.nanstd(diff)))
        out[d] = row
    return out


@dataclass
class HindfootCheck:
    """Our rearfoot eversion against the Oxford Foot Model's hindfoot–tibia frontal angle
    (inversion + in the file, so its negative), over stance frames, per side."""

    n_frames: dict[str, int]  # heel-down frames (contact to heel-off: the rearfoot line exists)
    rmse_deg: dict[str, float]  # triangulated ours vs OFM eversion, raw
    bias_deg: dict[str, float]  # mean (ours - OFM eversion)
    sd_deg: dict[str, float]  # SD of the difference: the dynamic disagreement
    corr: dict[str, float]  # correlation of ours with OFM eversion
    markers_rmse_deg: dict[str, float]  # the same definition on the markers vs OFM
    triangulation_rmse_deg: dict[str, float]  # triangulated vs the markers' own


STANCE_SPEED_M_S = 0.15  # heel ground speed below this: the heel is down (contact to heel-off)


def hindfoot_check(trial: RealTrial, noise_px: float = 1.5, seed: int = 0) -> HindfootCheck | None:
    """Rearfoot eversion (ours, from heel, ankle centre and knee centre) on a trial whose
    lab model gives a hindfoot angle (``hindfoot_tibia_frontal_deg``), else None. The two
    are different quantities: ours is the heel→ankle line against the shank line in the
    plane across the foot's progression; OFM's is the hindfoot segment's (calcaneus
    markers, static-trial neutral) rotation in the tibia's frame. No offset is fitted."""
    from .kinematics import rearfoot_eversion
    from rig.validation.trials import foot_ground_speed
    if trial.lab is None or ("left", "hindfoot_tibia_frontal_deg") not in trial.lab.angles_deg:
        return None
    world, est = _triangulated(trial, noise_px, seed)
    t = trial.t_s
    out = HindfootCheck({}, {}, {}, {}, {}, {}, {})
    for side in ("left", "right"):
        ground = {m: trial.markers[(side, m)] + np.column_stack([trial.belt_speed_m_s * t, 0 * t, 0 * t])
                  for m in ("heel", "toe")}
        stance = foot_ground_speed(t, ground["heel"], ground["heel"]) < STANCE_SPEED_M_S  # heel down
        lab = -trial.lab.angles_deg[(side, "hindfoot_tibia_frontal_deg")][stance]
        ours, true = rearfoot_eversion(est, side)[stance], rearfoot_eversion(world, side)[stance]
        diff = ours - lab
        out.n_frames[side] = int(stance.sum())
        out.rmse_deg[side] = _rmse(ours, lab)
        out.bias_deg[side] = float(np.mean(diff))
        out.sd_deg[side] = float(np.std(diff))
        out.corr[side] = float(np.corrcoef(ours, lab)[0, 1])
        out.markers_rmse_deg[side] = _rmse(true, lab)
        out.triangulation_rmse_deg[side] = _rmse(ours, true)
    return out


def davis_hip_centres(asis_l: np.ndarray, asis_r: np.ndarray, psis_l: np.ndarray, psis_r: np.ndarray,
                      leg_mm: dict[str, float], marker_radius_mm: float = _MARKER_RADIUS_MM) -> dict[str, np.ndarray]:
    """Plug-in Gait's hip joint centres (Davis et al. 1991), (n, 3) per side in the
    markers' units (mm), from the four pelvis markers and each leg's length — what the
    stroke file would need to rebuild them (it keeps only the ASIS/PSIS midpoints and no
    leg length; docs/3d.md). Checked against a Plug-in Gait file's own centres."""
    origin = 0.5 * (asis_l + asis_r)
    y = asis_l - asis_r
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    x = origin - 0.5 * (psis_l + psis_r)
    x -= np.sum(x * y, axis=1, keepdims=True) * y
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    z = np.cross(x, y)
    half_asis = 0.5 * float(np.median(np.linalg.norm(asis_l - asis_r, axis=1)))
    out = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        xd, yd, zd = _davis_offset_mm(leg_mm[side], half_asis, marker_radius_mm)
        out[side] = origin + xd * x + sign * yd * y + zd * z
    return out


# ----------------------------------------------------------------- knee axis cross-talk
def pig_knee_angles(femur: np.ndarray, tibia: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Plug-in Gait's knee flexion and adduction (deg, as Nexus writes ``KneeAngles`` X and
    Y) from its femur and tibia axes: the Grood–Suntay angles of :func:`jcs_angles` with
    Plug-in Gait's signs (flexion +; adduction = the floating-axis tilt, mirrored on the
    right). Reproduces the file's angles to 0.01° (tested), so a change of axis below is
    the only change."""
    flex, tilt, _ = jcs_angles(femur, tibia)
    return -flex, (1.0 if side == "left" else -1.0) * tilt


def about_long_axis(frames: np.ndarray, angle_rad: float) -> np.ndarray:
    """Segment axes (n, 3, 3; rows X, Y, Z) turned about their own Z by ``angle_rad``: the
    flexion axis (Y) moved as a misplaced knee marker or thigh wand moves it."""
    x, y, z = frames[:, 0], frames[:, 1], frames[:, 2]
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.stack([c * x + s * y, -s * x + c * y, z], axis=1)


CROSSTALK_SEARCH_DEG = 60.0  # the flexion-axis error searched, each way about the femur's long axis


def crosstalk_axis_rad(femur: np.ndarray, tibia: np.ndarray, side: str,
                       criterion: str = "uncorrelated") -> float:
    """The rotation of the femur's flexion axis about its long axis that removes the knee's
    cross-talk, judged on the lab's own angles only (never against ours):

    * ``"uncorrelated"`` — flexion and ab/adduction uncorrelated over the trial, the
      criterion of Baudet et al. 2014 (PLoS ONE 9:e102098; cross-talk's hallmark is their
      correlation), applied as a rotation of the axis as in Jensen et al. 2016 (J Biomech
      49:1698);
    * ``"least_adduction"`` — the least mean square ab/adduction, Baker et al. 1999
      (Hum Mov Sci 18:655).

    A 1° grid over ±:data:`CROSSTALK_SEARCH_DEG` then a bounded refinement (the
    correlation crosses zero once in that span on the trials here)."""
    from scipy.optimize import minimize_scalar

    def cost(a: float) -> float:
        flex, add = pig_knee_angles(about_long_axis(femur, a), tibia, side)
        return float(np.corrcoef(flex, add)[0, 1] ** 2) if criterion == "uncorrelated" else float(np.mean(add ** 2))
    if criterion not in ("uncorrelated", "least_adduction"):
        raise ValueError(f"unknown cross-talk criterion {criterion!r}")
    grid = np.radians(np.arange(-CROSSTALK_SEARCH_DEG, CROSSTALK_SEARCH_DEG + 0.5, 1.0))
    best = grid[int(np.argmin([cost(a) for a in grid]))]
    step = np.radians(1.0)
    return float(minimize_scalar(cost, bounds=(best - step, best + step), method="bounded").x)


def implausible_knee_frontal(adduction_deg: np.ndarray) -> str | None:
    """The report's own rule for a frontal knee angle a human joint cannot make
    (``HUMAN_RANGE_DEG["knee_fppa_2d_deg"]``, rig.gait.report), applied to a lab's knee
    ab/adduction: None when inside, else why it would be withheld."""
    from rig.gait.report import HUMAN_RANGE_DEG
    lo, hi = HUMAN_RANGE_DEG["knee_fppa_2d_deg"]
    a = adduction_deg[np.isfinite(adduction_deg)]
    if a.min() < lo or a.max() > hi:
        return f"reaches {a.min():.0f}..{a.max():.0f}°, outside what a human knee does ({lo:g}..{hi:g}°)"
    return None


@dataclass
class KneeCrosstalk:
    """One side's Plug-in Gait knee before and after the cross-talk correction, and ours
    against both (raw RMSE, nothing fitted to ours)."""

    axis_deg: float  # flexion-axis rotation about the femur's long axis (Baudet's criterion)
    axis_least_adduction_deg: float  # the same by Baker's criterion
    raw_adduction_deg: tuple[float, float]  # min, max of the file's knee ab/adduction
    raw_corr: float  # correlation of the file's knee flexion and ab/adduction
    raw_implausible: str | None  # the report's human-range rule on the file's ab/adduction
    corrected_adduction_deg: tuple[float, float]
    corrected_corr: float
    raw_rmse_deg: float  # our (triangulated) knee flexion vs the file's
    corrected_rmse_deg: float  # vs the corrected flexion (Baudet's axis)
    corrected_least_adduction_rmse_deg: float  # vs the flexion on Baker's axis
    markers_corrected_rmse_deg: float  # the markers' own knee flexion vs the corrected
    corrected_bias_deg: float  # mean ours - corrected


def knee_crosstalk(femur: np.ndarray, tibia: np.ndarray, side: str, ours_deg: np.ndarray,
                   markers_deg: np.ndarray) -> KneeCrosstalk:
    """Plug-in Gait's knee from its own femur and tibia axes, its flexion axis turned about
    the femur's long axis until flexion and ab/adduction are uncorrelated (docs/3d.md,
    "knee cross-talk"), against our knee flexion (``ours_deg``) and the markers' own."""
    flex0, add0 = pig_knee_angles(femur, tibia, side)
    a = crosstalk_axis_rad(femur, tibia, side)
    a_baker = crosstalk_axis_rad(femur, tibia, side, "least_adduction")
    flex1, add1 = pig_knee_angles(about_long_axis(femur, a), tibia, side)
    flex_b, _ = pig_knee_angles(about_long_axis(femur, a_baker), tibia, side)
    return KneeCrosstalk(
        float(np.degrees(a)), float(np.degrees(a_baker)), (float(add0.min()), float(add0.max())),
        float(np.corrcoef(flex0, add0)[0, 1]), implausible_knee_frontal(add0),
        (float(add1.min()), float(add1.max())), float(np.corrcoef(flex1, add1)[0, 1]),
        _rmse(ours_deg, flex0), _rmse(ours_deg, flex1), _rmse(ours_deg, flex_b), _rmse(markers_deg, flex1),
        float(np.nanmean(ours_deg - flex1)))


# ------------------------------------------------------------ rearfoot relative to standing
@dataclass
class StandingRearfootCheck:
    """Rearfoot eversion read relative to the same subject's standing value (the clinic's
    neutral), ours against the Oxford Foot Model's, per side (deg, eversion +)."""

    standing_ours_deg: dict[str, float]  # triangulated static trial, median
    standing_markers_deg: dict[str, float]  # the same definition on the static trial's points
    standing_ofm_deg: dict[str, float]  # OFM hindfoot-tibia eversion, static trial mean
    rmse_deg: dict[str, float]  # (ours - ours standing) vs (OFM - OFM standing), heel-down frames
    bias_deg: dict[str, float]  # mean of that difference
    excursion_ours_deg: dict[str, float]  # range over the heel-down frames
    excursion_ofm_deg: dict[str, float]
    excursion_markers_deg: dict[str, float]  # our definition on the walk's points (no camera noise)
    heel_marker_shift_mm: dict[str, float]  # the heel marker between the trials, in the calcaneus markers' frame


def heel_marker_shift_mm(static: RealTrial, dynamic: RealTrial) -> dict[str, float]:
    """How far the heel marker (HEE) sits from where it sat in the other trial, in the frame
    of three calcaneus markers that are on the bone in both (STL, LCA, CPG; medians), mm
    per side: a standing reference is only a reference if the points are the same."""
    from edge_models.fetch import validation_path
    from rig.validation.c3d_trials import _SPECS, marker_points, read_c3d

    def local(name: str, side: str) -> np.ndarray:
        path = validation_path(_SPECS[name].file)
        c, _, labels, _ = read_c3d(path)
        p = {m: marker_points(c, labels, side[0].upper() + m, path) for m in ("STL", "LCA", "CPG", "HEE")}
        x = p["LCA"] - p["STL"]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        z = np.cross(x, p["CPG"] - p["STL"])
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        v = p["HEE"] - p["STL"]
        return np.median(np.stack([np.sum(v * x, 1), np.sum(v * np.cross(z, x), 1), np.sum(v * z, 1)], 1), 0)
    return {s: float(np.linalg.norm(local(static.name, s) - local(dynamic.name, s))) for s in ("left", "right")}


def standing_rearfoot_check(dynamic: RealTrial, static: RealTrial, noise_px: float = 1.5,
                            seed: int = 0) -> StandingRearfootCheck:
    """Both rearfoot angles relative to their own standing value: ours from the static
    trial's points seen by the same cameras, triangulated (median over the trial); the
    lab's from its static trial's OFM angles (mean). Compared over the walk's heel-down
    frames (:func:`hindfoot_check`'s), with the excursion (range) over those frames."""
    from rig.validation.trials import foot_ground_speed
    world_static, est_static = _triangulated(static, noise_px, seed)
    world, est = _triangulated(dynamic, noise_px, seed)
    t = dynamic.t_s
    out = StandingRearfootCheck({}, {}, {}, {}, {}, {}, {}, {}, heel_marker_shift_mm(static, dynamic))
    for side in ("left", "right"):
        out.standing_ours_deg[side] = float(np.nanmedian(rearfoot_eversion(est_static, side)))
        out.standing_markers_deg[side] = float(np.nanmedian(rearfoot_eversion(world_static, side)))
        out.standing_ofm_deg[side] = -float(np.mean(static.lab.angles_deg[(side, "hindfoot_tibia_frontal_deg")]))
        heel = dynamic.markers[(side, "heel")] + np.column_stack([dynamic.belt_speed_m_s * t, 0 * t, 0 * t])
        stance = foot_ground_speed(t, heel, heel) < STANCE_SPEED_M_S
        ours = rearfoot_eversion(est, side)[stance] - out.standing_ours_deg[side]
        ofm = -dynamic.lab.angles_deg[(side, "hindfoot_tibia_frontal_deg")][stance] - out.standing_ofm_deg[side]
        out.rmse_deg[side] = _rmse(ours, ofm)
        out.bias_deg[side] = float(np.mean(ours - ofm))
        out.excursion_ours_deg[side] = float(np.ptp(ours))
        out.excursion_ofm_deg[side] = float(np.ptp(ofm))
        out.excursion_markers_deg[side] = float(np.ptp(rearfoot_eversion(world, side)[stance]))
    return out
