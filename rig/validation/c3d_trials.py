"""Vicon Nexus C3D trials that carry the lab model's own output: the 3D checks against the
lab (docs/3d.md, docs/validation.md).

Unlike the gaitkit trials (markers only, or angles without the joint centres behind them),
these files hold the model's **joint centres** — Plug-in Gait's segment origins, written
by Nexus as "bones" — and its angles, so our landmarks are the very points the lab's
angles were computed from and the comparison is like for like:

- ``pig_treadmill``: gaitalytics 0.2.2's ``tests/treadmill_events.c3d`` (DART lab; Vicon
  Nexus 2.14, marker set "LowerLimb_Trunk_HBM2"): 12 s on a split-belt treadmill at 100 Hz,
  one force plate under each belt (1 kHz), Plug-in Gait outputs. Hip = ``LFEP`` (the femur's
  proximal point: Plug-in Gait's hip joint centre; the pelvis origin ``PELO`` is the two
  points' midpoint), knee = ``LFEO`` (femur origin = knee joint centre, 59.9 mm medial of
  the lateral epicondyle marker = (knee width + marker diameter) / 2), ankle = ``LTIO``
  (tibia origin = ankle joint centre, (ankle width + marker) / 2 from the malleolus
  marker). Reference events: each belt's plate, vertical force crossing 20 N.
- ``ofm_overground``: openofm 1.1.3's ``Data_Validate/Default/dynamic_processed.c3d``: the
  Vicon implementation of the Oxford Foot Model (with Plug-in Gait) on a 2 s overground
  walk at 100 Hz, no plates. Hip = ``LHJC``, knee = ``LFEO``, ankle = ``LTIO``; the lab
  rearfoot angle is OFM's hindfoot relative to the tibia (``LHFTBA``).
- ``ofm_static``: the same package's ``static_processed.c3d``: that subject standing still
  (9 s), the OFM's static trial, processed by the same Vicon pipeline: the standing
  reference for the rearfoot (docs/3d.md). Not a walk: no events, no speed.

ezc3d (a dev dependency, as gaitkit's) reads the files; nothing here runs on the rig.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_models.fetch import validation_path

from .trials import (PLATE_THRESHOLD_N, SIDES, DroppedEvent, LabOutput, RealTrial, Reference, _centre,
                     foot_ground_speed, judge_event, plate_events)

LAB_TRIAL_NAMES = ("pig_treadmill", "ofm_overground")
STANDING_TRIAL_NAMES = ("ofm_static",)  # lab-model trials of a subject standing still
_SIDE = {"left": "L", "right": "R"}
# Plug-in Gait angle outputs (component X = sagittal) and what we call them
_PIG_ANGLES = {"hip_flexion_deg": "HipAngles", "knee_flexion_deg": "KneeAngles",
               "ankle_dorsiflexion_deg": "AnkleAngles", "pelvis_tilt_deg": "PelvisAngles"}
_BONES = {"femur": "FE", "tibia": "TI"}  # Plug-in Gait's segment axes, written by Nexus as bones
_SHOULDER_HALF_WIDTH_M = 0.18
_SHOULDER_ABOVE_HIPS_M = 0.50  # a trial without trunk markers: nominal shoulders (events do not use them)


@dataclass(frozen=True)
class _Spec:
    file: str
    description: str
    source: str
    points: dict[str, str]  # our landmark -> C3D label without the side prefix
    shoulders: str  # how the shoulder stand-ins are made
    model: str
    extra_angles: dict[str, tuple[str, int]]  # our name -> (C3D label without side, component)
    standing: bool = False  # a static trial: forward is where the feet point


_SPECS = {
    "pig_treadmill": _Spec(
        "gaitalytics_treadmill_events.c3d",
        "Adult on a split-belt instrumented treadmill, a plate under each belt, Plug-in Gait",
        "gaitalytics 0.2.2 (DART lab; MIT), tests/treadmill_events.c3d, Vicon Nexus 2.14",
        {"hip": "FEP", "knee": "FEO", "ankle": "TIO", "heel": "HEE", "toe": "MT2"},
        "C7/JN midpoint ± 0.18 m along the hip-centre line (the file has no acromion marker)",
        "Vicon Plug-in Gait (joint centres from the file: femur/tibia bone origins)", {}),
    "ofm_overground": _Spec(
        "openofm_dynamic_processed.c3d",
        "Adult walking overground, Vicon Oxford Foot Model with Plug-in Gait",
        "openofm 1.1.3 (MIT in PKG-INFO, GPL-3.0 LICENSE file), Data_Validate/Default/dynamic_processed.c3d",
        {"hip": "HJC", "knee": "FEO", "ankle": "TIO", "heel": "HEE", "toe": "TOE"},
        "nominal: 0.5 m above the hip centres, ± 0.18 m (the file has no trunk markers)",
        "Vicon Oxford Foot Model + Plug-in Gait (joint centres from the file)",
        {"hindfoot_tibia_frontal_deg": ("HFTBA", 1)}),
    "ofm_static": _Spec(
        "openofm_static_processed.c3d",
        "The OFM trial's subject standing still (the model's static trial)",
        "openofm 1.1.3 (MIT in PKG-INFO, GPL-3.0 LICENSE file), Data_Validate/Default/static_processed.c3d",
        {"hip": "HJC", "knee": "FEO", "ankle": "TIO", "heel": "HEE", "toe": "TOE"},
        "nominal: 0.5 m above the hip centres, ± 0.18 m (the file has no trunk markers)",
        "Vicon Oxford Foot Model + Plug-in Gait (joint centres from the file)",
        {"hindfoot_tibia_frontal_deg": ("HFTBA", 1)}, standing=True),
}


def read_c3d(path: Path):
    """(ezc3d object, parameters, point labels, point rate Hz) of a C3D file in mm."""
    import ezc3d  # dev dependency (gaitkit needs it too)

    c = ezc3d.c3d(str(path))
    p = c["parameters"]
    labels = [s.strip() for s in p["POINT"]["LABELS"]["value"]]
    rate = float(p["POINT"]["RATE"]["value"][0])
    if p["POINT"]["UNITS"]["value"][0].strip() != "mm":
        raise ValueError(f"{path.name}: points are not in mm")
    return c, p, labels, rate


def marker_points(c, labels: list[str], name: str, path: Path) -> np.ndarray:
    """(n, 3) mm of the named point, gaps (0 or NaN in the file) bridged linearly."""
    if name not in labels:
        raise ValueError(f"{path.name} has no point {name!r}")
    x = np.array(c["data"]["points"][:3, labels.index(name), :].T, float)
    bad = ~np.all(np.isfinite(x), axis=1) | np.all(x == 0.0, axis=1)  # Nexus writes gaps as 0 or NaN
    if bad.all():
        raise ValueError(f"{path.name}: point {name!r} is empty")
    if bad.any():  # bridged linearly (counted in the docs: none in the two files)
        i = np.arange(len(x))
        for k in range(3):
            x[bad, k] = np.interp(i[bad], i[~bad], x[~bad, k])
    return x


def _bone(c, labels: list[str], prefix: str, path: Path) -> np.ndarray:
    """A Nexus "bone" (origin O and points A, L, P along its anterior, left and proximal
    axes) as (n, 3, 3) unit rows X, Y, Z in the lab's axes."""
    o = marker_points(c, labels, prefix + "O", path)
    axes = [marker_points(c, labels, prefix + k, path) - o for k in "ALP"]
    return np.stack([a / np.linalg.norm(a, axis=1, keepdims=True) for a in axes], axis=1)


def _frame(raw: dict[tuple[str, str], np.ndarray], t_s: np.ndarray,
           standing: bool = False) -> tuple[np.ndarray, float]:
    """(rotation rows [forward, left, up], forward speed over the ground m/s). Up is the
    lab's +z (Nexus); forward is the heels' main horizontal direction of travel, signed by
    heel→toe (``standing``: the feet's mean heel→toe direction, speed 0); a trial whose left
    points lie on the walker's right is refused."""
    if standing:
        d = sum(np.mean(raw[(s, "toe")] - raw[(s, "heel")], axis=0) for s in SIDES)
        fwd = np.r_[d[:2] / np.linalg.norm(d[:2]), 0.0]
    else:
        heels = np.concatenate([raw[(s, "heel")][:, :2] - raw[(s, "heel")][:, :2].mean(0) for s in SIDES]
                               + [raw[(s, "hip")][:, :2] - raw[(s, "hip")][:, :2].mean(0) for s in SIDES])
        _, _, vt = np.linalg.svd(heels, full_matrices=False)
        fwd = np.r_[vt[0], 0.0]
    if np.mean([(raw[(s, "toe")] - raw[(s, "heel")]) @ fwd for s in SIDES]) < 0:
        fwd = -fwd
    up = np.array([0.0, 0.0, 1.0])
    left = np.cross(up, fwd)
    if np.mean((raw[("left", "hip")] - raw[("right", "hip")]) @ left) <= 0:
        raise ValueError("left/right points are mirrored against the walking direction")
    hips = 0.5 * (raw[("left", "hip")] + raw[("right", "hip")])
    speed = 0.0 if standing else float(np.polyfit(t_s, hips @ fwd, 1)[0])
    return np.stack([fwd, left, up]), speed


def _shoulders(spec: _Spec, c, labels, path, raw, rot) -> dict[str, np.ndarray]:
    hl, hr = raw[("left", "hip")], raw[("right", "hip")]
    y = (hl - hr) / np.linalg.norm(hl - hr, axis=1, keepdims=True)
    if "C7" in labels and "JN" in labels:
        neck = 0.5 * (marker_points(c, labels, "C7", path) + marker_points(c, labels, "JN", path)) / 1000.0
    else:
        neck = 0.5 * (hl + hr) + _SHOULDER_ABOVE_HIPS_M * rot[2]
    return {"left": neck + _SHOULDER_HALF_WIDTH_M * y, "right": neck - _SHOULDER_HALF_WIDTH_M * y}


def _plate_reference(c, p, markers: dict[tuple[str, str], np.ndarray], lab_heel: dict[str, np.ndarray],
                     t_s: np.ndarray, belt_m_s: float, path: Path) -> Reference:
    """Each foot's events from the plate under its belt (the plate nearest its heel's mean
    position), each judged against the markers (:func:`judge_event` on the ground frame):
    on a split-belt treadmill a foot that crosses over loads the other foot's plate, which
    then times that foot's foot-off late, and a heel that lands on the other belt's plate
    makes this plate time the contact late (when the forefoot arrives); those are dropped
    and listed."""
    fp = p["FORCE_PLATFORM"]
    used = int(fp["USED"]["value"][0])
    if used < 2:
        raise ValueError(f"{path.name}: {used} force plate(s); a split-belt trial needs two")
    labels = [s.strip() for s in p["ANALOG"]["LABELS"]["value"]]
    analog = np.array(c["data"]["analogs"][0], float)
    t_a = np.arange(analog.shape[1]) / float(p["ANALOG"]["RATE"]["value"][0])
    corners = np.array(fp["CORNERS"]["value"], float)  # (3, 4, plates), lab frame mm
    centres = corners.mean(axis=1).T
    lo, hi = corners.min(axis=1).T, corners.max(axis=1).T
    ground = {k: v + np.column_stack([belt_m_s * t_s, 0 * t_s, 0 * t_s]) for k, v in markers.items()}
    ic, fo, dropped = {}, {}, []
    for side in SIDES:
        k = int(np.argmin(np.linalg.norm(centres[:, :2] - 1000.0 * lab_heel[side].mean(0)[:2], axis=1)))
        on, off = plate_events(t_a, -analog[labels.index(f"Force.Fz{k + 1}")])  # Fz < 0 under load
        speed = foot_ground_speed(t_s, ground[(side, "heel")], ground[(side, "toe")])
        for kind, times, out in (("ic", on, ic), ("fo", off, fo)):
            kept = []
            for x in times[(times > 0) & (times < t_s[-1])]:
                why = judge_event(kind, float(x), t_s, speed)
                heel_mm = 1000.0 * lab_heel[side][int(round(float(np.interp(x, t_s, np.arange(len(t_s))))))]
                other = [j for j in range(len(centres)) if j != k
                         and np.all((heel_mm[:2] >= lo[j, :2]) & (heel_mm[:2] <= hi[j, :2]))]
                if why is None and kind == "ic" and other:
                    why = (f"the heel landed on plate {other[0] + 1} (the other belt's; heel marker "
                           f"{heel_mm[0]:+.0f} mm across): this plate times the forefoot's arrival")
                if why is None:
                    kept.append(float(x))
                else:
                    dropped.append(DroppedEvent(side, kind, float(x), f"plate {k + 1}: {why}"))
            out[side] = np.array(kept)
    return Reference(ic, fo, f"force plate under each belt, vertical force crossing {PLATE_THRESHOLD_N:g} N "
                             "(1 kHz, interpolated), judged against the markers", tuple(dropped))


def _belt_speed(markers: dict[tuple[str, str], np.ndarray], t_s: np.ndarray) -> float:
    """The belt's speed (m/s): the median backward speed of heel and toe while the foot is
    flat (both within 15 mm of their lowest height), where they ride the belt."""
    v = []
    for s in SIDES:
        h, f = markers[(s, "heel")], markers[(s, "toe")]
        flat = (h[:, 2] < np.percentile(h[:, 2], 2) + 0.015) & (f[:, 2] < np.percentile(f[:, 2], 2) + 0.015)
        v += [-np.gradient(h[:, 0], t_s)[flat], -np.gradient(f[:, 0], t_s)[flat]]
    return float(np.median(np.concatenate(v)))


def load_c3d_trial(name: str, directory: Path | None = None) -> RealTrial:
    """One lab-model trial by name (:data:`LAB_TRIAL_NAMES`, :data:`STANDING_TRIAL_NAMES`)
    from the cache."""
    if name not in _SPECS:
        raise KeyError(f"unknown lab trial {name!r}; known: {', '.join(LAB_TRIAL_NAMES + STANDING_TRIAL_NAMES)}")
    spec = _SPECS[name]
    path = validation_path(spec.file, directory)
    c, p, labels, rate = read_c3d(path)
    raw = {(s, m): marker_points(c, labels, _SIDE[s] + lab, path) / 1000.0 for s in SIDES for m, lab in spec.points.items()}
    n = len(next(iter(raw.values())))
    t = np.arange(n) / rate
    rot, speed = _frame(raw, t, spec.standing)
    for s, sh in _shoulders(spec, c, labels, path, raw, rot).items():
        raw[(s, "shoulder")] = sh
    treadmill = abs(speed) < 0.2
    markers = {k: v @ rot.T - (0.0 if treadmill else np.column_stack([speed * t, 0 * t, 0 * t]))
               for k, v in raw.items()}
    _centre(markers)
    angles = {}
    for side in SIDES:
        for ours, lab in _PIG_ANGLES.items():
            angles[(side, ours)] = marker_points(c, labels, _SIDE[side] + lab, path)[:, 0]
        for ours, (lab, comp) in spec.extra_angles.items():
            angles[(side, ours)] = marker_points(c, labels, _SIDE[side] + lab, path)[:, comp]
        angles[(side, "knee_adduction_deg")] = marker_points(c, labels, _SIDE[side] + "KneeAngles", path)[:, 1]
    frames = {(s, seg): _bone(c, labels, _SIDE[s] + bone, path) for s in SIDES for seg, bone in _BONES.items()}
    if spec.standing:
        ref, belt = None, 0.0
    elif treadmill:
        belt = _belt_speed(markers, t)
        ref = _plate_reference(c, p, markers, {s: raw[(s, "heel")] for s in SIDES}, t, belt, path)
    else:
        ref, belt = None, speed
    marker_for = {m: f"{_SIDE['left']}/{_SIDE['right']}{lab}" for m, lab in spec.points.items()}
    marker_for["shoulder"] = spec.shoulders
    return RealTrial(
        name=name, description=spec.description, source=spec.source,
        setting=("standing" if spec.standing else "treadmill" if treadmill
                 else "overground (moved into the treadmill frame)"),
        native_fps=rate, t_s=t, markers=markers, belt_speed_m_s=belt, reference=ref, marker_for=marker_for,
        lab=LabOutput(spec.model, angles, frames))


def load_lab_trials(directory: Path | None = None) -> list[RealTrial]:
    """Every lab-model trial, in :data:`LAB_TRIAL_NAMES` order."""
    return [load_c3d_trial(n, directory) for n in LAB_TRIAL_NAMES]
