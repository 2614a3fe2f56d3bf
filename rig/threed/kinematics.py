"""3D joint angles and foot/pelvis measures from triangulated landmarks.

Convention (docs/3d.md): world x forward (walking direction), y to the walker's left,
z up. Every segment frame has X anterior, Y to the walker's left, Z proximal/up, built
from the landmarks a pose model (or a lab's joint-centre markers) gives — hip, knee,
ankle, heel, toe tip per side:

* pelvis: Y from the right to the left hip joint, Z = world up made perpendicular to Y;
* thigh: Z from knee to hip, Y = pelvis Y made perpendicular to Z;
* shank: Z from ankle to knee, Y = thigh Y made perpendicular to Z;
* foot: X from heel to toe tip, Y = shank Y made perpendicular to X, Z = X × Y.

Joint angles follow Grood & Suntay's joint coordinate system (1983; ISB, Wu et al. 2002):
e1 = the proximal segment's Y (flexion axis), e3 = the distal segment's long axis (Z; for
the ankle the foot's Z), e2 = e1 × e3 (floating axis).
Flexion = rotation about e1 (hip flexion +, knee flexion +, ankle dorsiflexion +);
ab/adduction = the angle between e1 and e3 less 90° (hip adduction +, knee valgus =
abduction +); rotation about e3 (ankle: foot internal rotation +). Hip and knee axial
rotation are not observable from points on the segments' long axes (no marker or landmark
off the axis), nor is the ankle's JCS ab/adduction (the foot's Y is built from the shank's),
so they are not reported; the foot's frontal plane is the rearfoot angle below.

Frontal-plane foot measures are defined in the plane across the foot's progression line
(the heel→toe line on the belt): rearfoot eversion = the heel→ankle line against the
ankle→knee line (the shank), heel lateral = eversion + (the 3D form of the clinic's
posterior-view rearfoot angle); foot progression angle = heel→toe line against x on the
belt, toe-out +. Pelvic obliquity = the hip line against the belt plane, left hip higher
+ (pelvic drop is the contralateral hip's fall during one side's stance).
"""
from __future__ import annotations

import numpy as np

LANDMARKS = {"left": {"hip": 23, "knee": 25, "ankle": 27, "heel": 29, "toe": 31},
             "right": {"hip": 24, "knee": 26, "ankle": 28, "heel": 30, "toe": 32}}
SIDE_SIGN = {"left": 1.0, "right": -1.0}  # lateral = +y on the left, -y on the right
UP = np.array([0.0, 0.0, 1.0])
ANGLE_NAMES = ("hip_flexion_deg", "hip_adduction_deg", "knee_flexion_deg", "knee_valgus_deg",
               "ankle_dorsiflexion_deg", "ankle_internal_rotation_deg", "rearfoot_eversion_deg",
               "foot_progression_deg")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=-1)


def _perp(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """``v`` made perpendicular to the unit ``axis`` and normalised."""
    return _unit(v - _dot(v, axis)[..., None] * axis)


def segment_frames(points_m: np.ndarray, side: str) -> dict[str, np.ndarray]:
    """(n, 33, 3) landmarks -> per segment (n, 3, 3) frames, rows X, Y, Z in world."""
    lm = LANDMARKS[side]
    p = {k: points_m[:, i] for k, i in lm.items()}
    y_pel = _unit(points_m[:, LANDMARKS["left"]["hip"]] - points_m[:, LANDMARKS["right"]["hip"]])
    z_pel = _perp(np.broadcast_to(UP, y_pel.shape), y_pel)
    frames = {"pelvis": np.stack([np.cross(y_pel, z_pel), y_pel, z_pel], axis=1)}
    z_th = _unit(p["hip"] - p["knee"])
    y_th = _perp(y_pel, z_th)
    frames["thigh"] = np.stack([np.cross(y_th, z_th), y_th, z_th], axis=1)
    z_sh = _unit(p["knee"] - p["ankle"])
    y_sh = _perp(y_th, z_sh)
    frames["shank"] = np.stack([np.cross(y_sh, z_sh), y_sh, z_sh], axis=1)
    x_ft = _unit(p["toe"] - p["heel"])
    y_ft = _perp(y_sh, x_ft)
    frames["foot"] = np.stack([x_ft, y_ft, np.cross(x_ft, y_ft)], axis=1)
    return frames


def jcs_angles(proximal: np.ndarray, distal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grood & Suntay angles (deg) of ``distal`` in ``proximal`` (both (n, 3, 3), rows X Y Z):
    (rotation about e1 = proximal Y, positive when distal Z tips forward-from-up the way
    a flexing hip's thigh does; asin(e1·e3); rotation about e3 of distal X from e2)."""
    e1, e3 = proximal[:, 1], distal[:, 2]
    e2 = _unit(np.cross(e1, e3))
    flex = np.degrees(np.arctan2(_dot(e2, proximal[:, 2]), _dot(e2, proximal[:, 0])))
    tilt = np.degrees(np.arcsin(np.clip(_dot(e1, e3), -1.0, 1.0)))
    rot = np.degrees(np.arctan2(_dot(np.cross(e2, distal[:, 0]), e3), _dot(e2, distal[:, 0])))
    return flex, tilt, rot


def joint_angles(points_m: np.ndarray, side: str) -> dict[str, np.ndarray]:
    """Per-frame 3D angles of one side (deg), names in :data:`ANGLE_NAMES`."""
    s = SIDE_SIGN[side]
    f = segment_frames(points_m, side)
    hip_flex, hip_tilt, _ = jcs_angles(f["pelvis"], f["thigh"])
    knee_flex, knee_tilt, _ = jcs_angles(f["thigh"], f["shank"])
    ankle_flex, _, ankle_rot = jcs_angles(f["shank"], f["foot"])
    return {
        "hip_flexion_deg": hip_flex,
        "hip_adduction_deg": s * hip_tilt,
        "knee_flexion_deg": -knee_flex,
        "knee_valgus_deg": -s * knee_tilt,
        "ankle_dorsiflexion_deg": ankle_flex,
        "ankle_internal_rotation_deg": -s * ankle_rot,
        "rearfoot_eversion_deg": rearfoot_eversion(points_m, side),
        "foot_progression_deg": foot_progression(points_m, side),
    }


def _progression_axis(points_m: np.ndarray, side: str) -> np.ndarray:
    lm = LANDMARKS[side]
    d = points_m[:, lm["toe"]] - points_m[:, lm["heel"]]
    d = d.copy()
    d[:, 2] = 0.0
    return _unit(d)


def rearfoot_eversion(points_m: np.ndarray, side: str) -> np.ndarray:
    """Heel→ankle line against the shank in the plane across the foot (deg, eversion +)."""
    lm = LANDMARKS[side]
    f = _progression_axis(points_m, side)
    shank = _perp(points_m[:, lm["ankle"]] - points_m[:, lm["knee"]], f)
    heel = _perp(points_m[:, lm["heel"]] - points_m[:, lm["ankle"]], f)
    return SIDE_SIGN[side] * np.degrees(np.arctan2(_dot(np.cross(shank, heel), f), _dot(shank, heel)))


def foot_progression(points_m: np.ndarray, side: str) -> np.ndarray:
    """Heel→toe line on the belt against the walking direction (deg, toe-out +)."""
    f = _progression_axis(points_m, side)
    return SIDE_SIGN[side] * np.degrees(np.arctan2(f[:, 1], f[:, 0]))


def pelvic_obliquity(points_m: np.ndarray) -> np.ndarray:
    """Hip line against the belt plane (deg, + = left hip higher)."""
    d = points_m[:, LANDMARKS["left"]["hip"]] - points_m[:, LANDMARKS["right"]["hip"]]
    return np.degrees(np.arctan2(d[:, 2], np.hypot(d[:, 0], d[:, 1])))


def pelvic_drop(obliquity_deg: np.ndarray, stance: np.ndarray, side: str) -> float:
    """Largest fall of the contralateral hip during ``side``'s stance frames (bool mask),
    from the stance's first frame (deg, + = dropped): Trendelenburg's sign."""
    if not stance.any():
        return float("nan")
    ob = obliquity_deg[stance]
    return float(np.nanmax(SIDE_SIGN[side] * (ob - ob[0])))  # left stance: the right hip falls, obliquity rises


def steps_3d(points_m: np.ndarray, t_s: np.ndarray, heel_strikes_s: dict[str, np.ndarray],
             belt_speed_m_s: float, max_step_s: float) -> dict[str, dict[str, list[float]]]:
    """Per side, the steps that end with that side's heel strike (from the other foot's
    heel strike just before it, none of the same foot in between, at most ``max_step_s``):
    step length = the landing heel's x at its strike − the other heel's x at its strike +
    belt speed × step time (how far the body travelled over the belt: the feet's positions
    on the treadmill plus what the belt carried away), and step width = the heels' distance
    across the walking direction (y) at the two strikes; metres."""
    out = {s: {"step_length_m": [], "step_width_m": []} for s in SIDE_SIGN}
    heel = {s: (points_m[:, LANDMARKS[s]["heel"], 0], points_m[:, LANDMARKS[s]["heel"], 1]) for s in SIDE_SIGN}
    for side, other in (("left", "right"), ("right", "left")):
        h, o = np.sort(heel_strikes_s.get(side, [])), np.sort(heel_strikes_s.get(other, []))
        for k, t1 in enumerate(h):
            before = o[o < t1]
            if not len(before) or (k and h[k - 1] > before[-1]) or t1 - before[-1] > max_step_s:
                continue
            t0 = before[-1]
            x1, y1 = (np.interp(t1, t_s, c) for c in heel[side])
            x0, y0 = (np.interp(t0, t_s, c) for c in heel[other])
            if np.isfinite([x0, x1, y0, y1]).all():
                out[side]["step_length_m"].append(float(x1 - x0 + belt_speed_m_s * (t1 - t0)))
                out[side]["step_width_m"].append(float(abs(y1 - y0)))
    return out
