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
from .kinematics import LANDMARKS, joint_angles, rearfoot_eversion
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


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2)))


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
    cams = rig_cameras()
    world = world_landmarks(trial, trial.t_s)
    est = SavitzkyGolaySmoother().smooth(
        Triangulator(cams).triangulate(observe(world, cams, noise_px, np.random.default_rng(seed))).points_m,
        trial.native_fps)
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
