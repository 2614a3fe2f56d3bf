"""Joint angles from single camera views: **2D projections** onto each image plane, not
3D anatomical angles (Stenum J, Rossi C, Roemmich RT (2021), *Two-dimensional video-based
analysis of human gait using pose estimation*, PLoS Comput Biol 17:e1008935: hip within
~4°, knee ~5.6° of 3D motion capture in the sagittal plane).

- Sagittal (side views): hip flexion (thigh against the trunk line), knee flexion
  (180° minus the hip-knee-ankle angle), ankle dorsiflexion (shank against the heel-toe
  line, 90° subtracted), positive = flexion / dorsiflexion.
- Frontal: rearfoot angle in the rear view (heel-ankle line against the knee-ankle line,
  eversion positive: the heel lateral), knee frontal-plane projection angle (FPPA) in the
  front view (valgus positive: the knee medial of the hip-ankle line), pelvic obliquity
  in the rear/front view (hip-joint line against the image horizontal, + = left hip higher).
"""
from __future__ import annotations

import math

import numpy as np

from ._signals import ANKLE, HEEL, HIP, KNEE, SHOULDER, SIDES, TOE
from .cycles import N_POINTS, Stride, time_normalise

SAGITTAL_LABELS = {
    "hip_flexion_2d_deg": "Hip flexion, 2D sagittal projection (thigh vs trunk line), deg",
    "knee_flexion_2d_deg": "Knee flexion, 2D sagittal projection, deg",
    "ankle_dorsiflexion_2d_deg": "Ankle dorsiflexion, 2D sagittal projection (shank vs heel-toe line), deg",
}
FRONTAL_LABELS = {
    "rearfoot_eversion_2d_deg": "Rearfoot angle, 2D rear-view projection (heel-ankle vs knee-ankle), eversion +, deg",
    "knee_fppa_2d_deg": "Knee frontal-plane projection angle, 2D front view, valgus +, deg",
    "pelvic_obliquity_2d_deg": "Pelvic obliquity, 2D frontal projection (hip line vs horizontal), + = left hip higher, deg",
}


def _angle(v1x, v1y, v2x, v2y):
    """Signed angle from v1 to v2 in image coordinates (deg, y down)."""
    return np.degrees(np.arctan2(v1x * v2y - v1y * v2x, v1x * v2x + v1y * v2y))


def sagittal_angles(lm: np.ndarray, side: str, facing: str) -> dict[str, np.ndarray]:
    """Per-frame 2D sagittal angles of one leg from a side view (n,) each."""
    f = 1.0 if facing == "right" else -1.0
    x = lm[..., 0] * f  # forward = +x
    y = lm[..., 1]
    sh = 0.5 * (x[:, SHOULDER["left"]] + x[:, SHOULDER["right"]]), 0.5 * (y[:, SHOULDER["left"]] + y[:, SHOULDER["right"]])
    hip = x[:, HIP[side]], y[:, HIP[side]]
    kn = x[:, KNEE[side]], y[:, KNEE[side]]
    an = x[:, ANKLE[side]], y[:, ANKLE[side]]
    he = x[:, HEEL[side]], y[:, HEEL[side]]
    to = x[:, TOE[side]], y[:, TOE[side]]
    trunk = hip[0] - sh[0], hip[1] - sh[1]  # downward along the trunk
    thigh = kn[0] - hip[0], kn[1] - hip[1]
    shank = an[0] - kn[0], an[1] - kn[1]
    foot = to[0] - he[0], to[1] - he[1]
    # with x forward and y down, a forward-swung thigh is a counter-clockwise turn from the
    # trunk line: negative in image orientation, so flip the sign
    hip_flex = -_angle(*trunk, *thigh)
    knee_flex = _angle(*thigh, *shank)
    ankle = -_angle(*shank, *foot) - 90.0
    return {"hip_flexion_2d_deg": hip_flex, "knee_flexion_2d_deg": knee_flex, "ankle_dorsiflexion_2d_deg": ankle}


def rearfoot_eversion(lm: np.ndarray, side: str) -> np.ndarray:
    """Rear view: angle of the heel-ankle line against the knee-ankle line, eversion +
    (heel lateral); the subject's left is image left in the rear view."""
    kx, ky = lm[:, KNEE[side], 0], lm[:, KNEE[side], 1]
    ax, ay = lm[:, ANKLE[side], 0], lm[:, ANKLE[side], 1]
    hx, hy = lm[:, HEEL[side], 0], lm[:, HEEL[side], 1]
    phi_shank = np.arctan2(ax - kx, ay - ky)
    phi_heel = np.arctan2(hx - ax, hy - ay)
    lat = 1.0 if side == "left" else -1.0
    return np.degrees(lat * (phi_shank - phi_heel))


def knee_fppa(lm: np.ndarray, side: str) -> np.ndarray:
    """Front view: knee frontal-plane projection angle, valgus + (knee medial of the
    hip-ankle line); the subject's left is image right in the front view."""
    hx, hy = lm[:, HIP[side], 0], lm[:, HIP[side], 1]
    kx, ky = lm[:, KNEE[side], 0], lm[:, KNEE[side], 1]
    ax, ay = lm[:, ANKLE[side], 0], lm[:, ANKLE[side], 1]
    ang = _angle(kx - hx, ky - hy, ax - kx, ay - ky)  # turn from thigh to shank
    # left leg (image right): a valgus knee lies toward image left (medial) → the shank
    # turns clockwise-in-image (positive) relative to the thigh; mirrored for the right leg
    return ang if side == "left" else -ang


def pelvic_obliquity(lm: np.ndarray, view: str) -> np.ndarray:
    """Rear/front view: hip-joint line against the horizontal, + = left hip higher."""
    lx, ly = lm[:, HIP["left"], 0], lm[:, HIP["left"], 1]
    rx, ry = lm[:, HIP["right"], 0], lm[:, HIP["right"], 1]
    with np.errstate(invalid="ignore"):
        return np.degrees(np.arctan2(ry - ly, np.abs(rx - lx)))


def _smooth(t, x, smooth_s):
    """Centred moving average over ``smooth_s`` (landmark jitter), NaN-aware."""
    if len(t) < 3 or smooth_s <= 0:
        return x
    n = max(1, int(round(smooth_s / float(np.median(np.diff(t))))) | 1)
    if n <= 1:
        return x
    ok = np.isfinite(x)
    k = np.ones(n)
    num = np.convolve(np.where(ok, x, 0.0), k, "same")
    den = np.convolve(ok.astype(float), k, "same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok & (den > 0), num / den, np.nan)


def _curve_summary(curves: list[np.ndarray]) -> dict:
    if not curves:
        return {"mean": None, "sd": None, "n": 0}
    a = np.vstack(curves)
    return {"mean": np.mean(a, 0).tolist(), "sd": (np.std(a, 0, ddof=1) if len(a) > 1 else np.full(N_POINTS, np.nan)).tolist(),
            "n": len(a)}


class SagittalKinematics:
    """Mean ± SD sagittal angle curves per side over time-normalised strides (101 points).

    Each leg is taken from the side view in which it is the near leg when that view is
    there (the far leg is partly hidden), else from the other side view.

    Attributes (after ``compute``): ``curves_`` dict angle -> side -> {mean, sd, n, view}.
    """

    def compute(self, side_views: dict, strides: dict[str, list[Stride]]) -> "SagittalKinematics":
        self.curves_ = {k: {} for k in SAGITTAL_LABELS}
        for side in SIDES:
            view = side if side in side_views else next(iter(side_views), None)
            for k in SAGITTAL_LABELS:
                self.curves_[k][side] = {"mean": None, "sd": None, "n": 0, "view": view}
            if view is None:
                continue
            t, lm, facing = side_views[view]
            ang = sagittal_angles(lm, side, facing)
            for k, a in ang.items():
                cur = [c for s in strides.get(side, [])
                       if (c := time_normalise(t, a, s.heel_strike_s, s.next_heel_strike_s)) is not None]
                self.curves_[k][side] = {**_curve_summary(cur), "view": view}
        return self


class FrontalKinematics:
    """Frontal-plane 2D measures through the cycle and per stride.

    Rearfoot angle (rear view) per side: curve and the per-stride mean over loading to
    midstance (``stance_window`` of the cycle); knee FPPA (front view) per side: curve and
    per-stride peak valgus in stance; pelvic obliquity (rear, else front): curve over the
    stride, per left stride the persistent component (mean of the values at the two heel
    strikes, where either side's stance-phase drop is smallest; a leg-length-discrepancy
    sign) and the peak contralateral drop in each side's stance (above the stride mean).
    Frontal signals are smoothed over ``smooth_s`` (landmark jitter) first.

    Attributes (after ``compute``): ``curves_``, ``per_stride_`` (measure -> side -> list),
    ``obliquity_per_stride_`` list, ``unavailable_``.
    """

    def __init__(self, stance_window=(0.10, 0.45), smooth_s: float = 0.05) -> None:
        self.stance_window = stance_window
        self.smooth_s = smooth_s

    def compute(self, frontal_views: dict, strides: dict[str, list[Stride]]) -> "FrontalKinematics":
        self.curves_ = {k: {} for k in FRONTAL_LABELS}
        self.per_stride_ = {"rearfoot_eversion_2d_deg": {s: [] for s in SIDES},
                            "knee_fppa_2d_deg": {s: [] for s in SIDES},
                            "pelvic_drop_2d_deg": {s: [] for s in SIDES}}
        self.obliquity_per_stride_ = []
        self.unavailable_ = {}
        a, b = self.stance_window
        series = {}
        if "rear" in frontal_views:
            t, lm = frontal_views["rear"]
            series["rearfoot_eversion_2d_deg"] = {s: (t, rearfoot_eversion(lm, s)) for s in SIDES}
        else:
            self.unavailable_["kinematics.frontal.rearfoot_eversion_2d_deg"] = "needs the rear view"
        if "front" in frontal_views:
            t, lm = frontal_views["front"]
            series["knee_fppa_2d_deg"] = {s: (t, knee_fppa(lm, s)) for s in SIDES}
        else:
            self.unavailable_["kinematics.frontal.knee_fppa_2d_deg"] = "needs the front view"
        pv = "rear" if "rear" in frontal_views else ("front" if "front" in frontal_views else None)
        if pv:
            t, lm = frontal_views[pv]
            po = pelvic_obliquity(lm, pv)
            series["pelvic_obliquity_2d_deg"] = {s: (t, po) for s in SIDES}
        else:
            self.unavailable_["kinematics.frontal.pelvic_obliquity_2d_deg"] = "needs the rear or front view"
        for k, per_side in series.items():
            for side in SIDES:
                t, x = per_side[side]
                x = _smooth(t, x, self.smooth_s)
                cur = []
                for s in strides.get(side, []):
                    c = time_normalise(t, x, s.heel_strike_s, s.next_heel_strike_s)
                    if c is None:
                        continue
                    cur.append(c)
                    st = s.stance_pct / 100
                    if k == "rearfoot_eversion_2d_deg":
                        self.per_stride_[k][side].append(float(np.mean(c[int(a * 100):int(b * 100) + 1])))
                    elif k == "knee_fppa_2d_deg":
                        self.per_stride_[k][side].append(float(np.max(c[: int(st * 100) + 1])))
                    else:
                        if side == "left" and np.isfinite(s.contra_heel_strike_s):
                            # persistent component: at the heel strikes, where the stance-phase
                            # drop of either side is smallest
                            p = int(round(100 * (s.contra_heel_strike_s - s.heel_strike_s) / s.stride_time_s))
                            self.obliquity_per_stride_.append(float(0.5 * (c[0] + c[p])))
                        lat = 1.0 if side == "left" else -1.0
                        self.per_stride_["pelvic_drop_2d_deg"][side].append(
                            float(np.max(lat * (c[: int(st * 100) + 1] - np.mean(c)))))
                self.curves_[k][side] = {**_curve_summary(cur), "view": per_side[side] and
                                         ("rear" if k == "rearfoot_eversion_2d_deg" else "front" if k == "knee_fppa_2d_deg" else pv)}
        return self


class StaticEvaluation:
    """Standing capture (belt stopped, patient still): resting rearfoot angles (rear view),
    pelvic obliquity (rear, else front view) and knee alignment (front-view FPPA), as the
    median over the frames with the 2.5-97.5 % spread of the frames.

    Attributes (after ``compute``): ``values_`` measure -> side/None -> {median, p2_5, p97_5, n},
    ``unavailable_``.
    """

    def compute(self, frontal_views: dict) -> "StaticEvaluation":
        self.values_, self.unavailable_ = {}, {}

        def summ(x):
            x = x[np.isfinite(x)]
            if len(x) == 0:
                return {"median": math.nan, "p2_5": math.nan, "p97_5": math.nan, "n_frames": 0}
            lo, med, hi = np.percentile(x, [2.5, 50, 97.5])
            return {"median": float(med), "p2_5": float(lo), "p97_5": float(hi), "n_frames": int(len(x))}

        if "rear" in frontal_views:
            lm = frontal_views["rear"][1]
            self.values_["rearfoot_eversion_2d_deg"] = {s: summ(rearfoot_eversion(lm, s)) for s in SIDES}
        else:
            self.unavailable_["static.rearfoot_eversion_2d_deg"] = "needs the rear view"
        if "front" in frontal_views:
            lm = frontal_views["front"][1]
            self.values_["knee_fppa_2d_deg"] = {s: summ(knee_fppa(lm, s)) for s in SIDES}
        else:
            self.unavailable_["static.knee_fppa_2d_deg"] = "needs the front view"
        pv = "rear" if "rear" in frontal_views else ("front" if "front" in frontal_views else None)
        if pv:
            self.values_["pelvic_obliquity_2d_deg"] = summ(pelvic_obliquity(frontal_views[pv][1], pv))
        else:
            self.unavailable_["static.pelvic_obliquity_2d_deg"] = "needs the rear or front view"
        return self
