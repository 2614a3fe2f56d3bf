"""The report's 3D section: the views triangulated with the rig calibration, filtered, and
the 3D measures (rig.threed.kinematics) through the gait cycle and per stride, on the
strides the gait engine found. Used by ``analyze_tracks(..., cameras=...)``; without a
calibration the report keeps its 2D projections and says so."""
from __future__ import annotations

import numpy as np

from rig.gait.cycles import N_POINTS, time_normalise
from rig.gait.kinematics import _curve_summary
from rig.gait.spatiotemporal import mean_ci

from .camera import CameraModel
from .kinematics import joint_angles, pelvic_obliquity, steps_3d
from .smoothing import SavitzkyGolaySmoother
from .triangulate import Triangulator

SIDES = ("left", "right")
LABELS_3D = {
    "hip_flexion_deg": "Hip flexion, 3D (thigh in pelvis, Grood-Suntay), deg",
    "hip_adduction_deg": "Hip adduction, 3D, deg",
    "knee_flexion_deg": "Knee flexion, 3D, deg",
    "knee_valgus_deg": "Knee valgus (abduction), 3D, deg",
    "ankle_dorsiflexion_deg": "Ankle dorsiflexion, 3D (foot in shank), deg",
    "ankle_internal_rotation_deg": "Foot internal rotation in the shank, 3D, deg",
    "rearfoot_eversion_deg": "Rearfoot eversion, 3D (heel-ankle vs shank across the foot), deg",
    "foot_progression_deg": "Foot progression angle, 3D (toe-out +), deg",
    "pelvic_obliquity_deg": "Pelvic obliquity, 3D (+ = left hip higher), deg",
}


class Kinematics3D:
    """3D curves (101 points per stride, mean ± SD) and per-stride measures: rearfoot
    eversion and foot progression averaged over ``stance_window`` of the stride (loading
    to midstance, as the 2D rearfoot angle), peak knee valgus in stance, peak contralateral
    pelvic drop in stance, and 3D step length and width at each heel strike
    (:func:`rig.threed.kinematics.steps_3d`; step length needs the belt speed)."""

    def __init__(self, stance_window=(0.10, 0.45), smoother: SavitzkyGolaySmoother | None = None,
                 gate_px: float = 15.0) -> None:
        self.stance_window = stance_window
        self.smoother = smoother or SavitzkyGolaySmoother()
        self.gate_px = gate_px

    def compute(self, views: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], cameras: dict[str, CameraModel],
                strides: dict, heel_strikes_s: dict[str, np.ndarray], fps: float,
                belt_speed_m_s: float = float("nan")) -> "Kinematics3D":
        """``views``: view -> (trigger index, t_s, lm (n, 33, 4)); views without a camera
        in the calibration are left out."""
        use = {v: x for v, x in views.items() if v in cameras}
        self.views_ = sorted(use)
        self.unavailable_ = {}
        if len(use) < 2:
            self.unavailable_["kinematics.3d"] = (f"3D needs two calibrated views; calibration has "
                                                  f"{sorted(cameras)}, session has {sorted(views)}")
            self.curves_, self.per_stride_, self.summary_, self.quality_ = {}, {}, {}, {}
            return self
        index = np.unique(np.concatenate([x[0] for x in use.values()]))
        t = np.interp(index, *_index_clock(use))
        aligned = {}
        for v, (idx, _, lm) in use.items():
            full = np.full((len(index), lm.shape[1], 4), np.nan)
            full[np.searchsorted(index, idx)] = lm
            aligned[v] = full
        tri = Triangulator({v: cameras[v] for v in use}, gate_px=self.gate_px).triangulate(aligned)
        pts = self.smoother.smooth(tri.points_m, fps)
        self.quality_ = {"views_dropped_by_gate": tri.views_dropped, "landmarks_rejected": tri.points_rejected,
                         "median_reprojection_px": float(np.nanmedian(tri.error_px)) if np.isfinite(tri.error_px).any()
                         else float("nan"),
                         "frames": int(len(index))}
        self._measures(t, pts, strides, heel_strikes_s, belt_speed_m_s)
        return self

    def _measures(self, t, pts, strides, heel_strikes_s, belt_speed_m_s) -> None:
        a, b = (int(round(x * (N_POINTS - 1))) for x in self.stance_window)
        obliq = pelvic_obliquity(pts)
        self.curves_ = {k: {} for k in LABELS_3D}
        self.per_stride_ = {s: {"rearfoot_eversion_3d_deg": [], "foot_progression_3d_deg": [],
                                "knee_valgus_3d_deg": [], "pelvic_drop_3d_deg": []} for s in SIDES}
        for side in SIDES:
            angles = {**joint_angles(pts, side), "pelvic_obliquity_deg": obliq}
            lat = 1.0 if side == "left" else -1.0
            for k, x in angles.items():
                cur = [c for s in strides.get(side, []) if (c := time_normalise(t, x, s.heel_strike_s, s.next_heel_strike_s))
                       is not None]
                self.curves_[k][side] = _curve_summary(cur)
            for s in strides.get(side, []):
                st = int(s.stance_pct / 100 * (N_POINTS - 1))
                c = {k: time_normalise(t, angles[k], s.heel_strike_s, s.next_heel_strike_s)
                     for k in ("rearfoot_eversion_deg", "foot_progression_deg", "knee_valgus_deg", "pelvic_obliquity_deg")}
                if any(v is None for v in c.values()):
                    continue
                ps = self.per_stride_[side]
                ps["rearfoot_eversion_3d_deg"].append(float(np.mean(c["rearfoot_eversion_deg"][a:b + 1])))
                ps["foot_progression_3d_deg"].append(float(np.mean(c["foot_progression_deg"][a:b + 1])))
                ps["knee_valgus_3d_deg"].append(float(np.max(c["knee_valgus_deg"][: st + 1])))
                ob = c["pelvic_obliquity_deg"]
                ps["pelvic_drop_3d_deg"].append(float(np.max(lat * (ob[: st + 1] - np.mean(ob)))))
        times = [s.stride_time_s for side in SIDES for s in strides.get(side, [])]
        steps = steps_3d(pts, t, heel_strikes_s, belt_speed_m_s, 0.75 * float(np.median(times)) if times else 1.5)
        for s in SIDES:  # like the 2D table: the steps that end with this side's heel strike
            self.per_stride_[s]["step_length_3d_m"] = steps[s]["step_length_m"]
        self.step_width_m_ = steps["left"]["step_width_m"] + steps["right"]["step_width_m"]
        self.summary_ = {k: {s: mean_ci(self.per_stride_[s][k]) for s in SIDES} for k in self.per_stride_["left"]}
        self.summary_["step_width_3d_m"] = mean_ci(self.step_width_m_)
        self.summary_["step_width_by_side_3d_m"] = {s: mean_ci(steps[s]["step_width_m"]) for s in SIDES}
        self.summary_["pelvic_obliquity_3d_deg"] = mean_ci(
            [float(np.mean(c)) for s in strides.get("left", [])
             if (c := time_normalise(t, obliq, s.heel_strike_s, s.next_heel_strike_s)) is not None])

    def to_dict(self) -> dict:
        return {"views": self.views_, "labels": LABELS_3D, "cycle_pct": list(range(N_POINTS)),
                "curves": self.curves_, "summary": self.summary_, "per_stride": self.per_stride_,
                "quality": self.quality_}


def _index_clock(use) -> tuple[np.ndarray, np.ndarray]:
    """(trigger index, t_s) of the view with the most frames: the session clock."""
    idx, t, _ = max(use.values(), key=lambda x: len(x[0]))
    return idx.astype(float), t
