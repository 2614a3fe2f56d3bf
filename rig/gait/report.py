"""The gait engine's entry point: :func:`analyze_tracks` (keypoint tracks of any subset of
the four views -> :class:`GaitReport`); conditions are compared in :mod:`rig.gait.compare`."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from rig.keypoints import SIDE_VIEWS, KeypointTrack

from ._signals import SIDES, LabelSwapRepair
from .cycles import StrideSegmentation
from .events import SideViewEventDetector
from .findings import ClinicalFindings
from .kinematics import FRONTAL_LABELS, SAGITTAL_LABELS, FrontalKinematics, SagittalKinematics, StaticEvaluation
from .outages import outage_cycles
from .spatiotemporal import SpatiotemporalParameters, mean_ci
from .views import SessionWeightFusion

REPORT_FORMAT = "gaitrig-gait/1"


class GaitInputError(ValueError):
    """Input the engine cannot analyse at all (one-line message)."""


@dataclass
class GaitReport:
    """The whole analysis; ``to_dict()`` is the JSON contract (docs/gait-analysis.md)."""

    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return _clean(self.data)

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    def __getitem__(self, k):
        return self.data[k]


def _clean(x):
    """NaN/inf -> None, numpy -> Python, recursively."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_clean(v) for v in x.tolist()]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _validate(tracks: dict[str, KeypointTrack]) -> float:
    if not tracks:
        raise GaitInputError("no keypoint views given")
    fps = {v: tr.header.fps for v, tr in tracks.items()}
    for v, tr in tracks.items():
        if tr.header.view != v:
            raise GaitInputError(f"track given as {v!r} says view {tr.header.view!r} in its header")
        if len(tr.t_s) < 2:
            raise GaitInputError(f"{v} view: fewer than two frames")
        if v in SIDE_VIEWS and tr.header.facing not in ("left", "right"):
            raise GaitInputError(f"{v} view: header has no 'facing'")
    if len({round(f, 6) for f in fps.values()}) > 1:
        raise GaitInputError("views have different frame rates (" + ", ".join(f"{v} {f:g} fps" for v, f in fps.items())
                             + "); they must come from one hardware-triggered session")
    return float(next(iter(fps.values())))


def _gaps(t: np.ndarray, found: np.ndarray) -> list[tuple[float, float]]:
    """Time spans with nobody in view (from last seen to next seen)."""
    if found.all():
        return []
    idx = np.flatnonzero(np.diff(np.r_[1, found.astype(int), 1]) != 0)
    out = []
    for a, b in zip(idx[::2], idx[1::2]):
        t0 = t[a - 1] if a > 0 else -np.inf
        t1 = t[b] if b < len(t) else np.inf
        out.append((float(t0), float(t1)))
    return out


def analyze_tracks(tracks: dict[str, KeypointTrack], belt_speed_m_s: float, cameras: dict | None = None,
                   outages: dict[str, list[tuple[int, int]]] | None = None) -> GaitReport:
    """Analyse one session: ``tracks`` maps view name -> track (any subset of left, right,
    rear, front, all at one frame rate); ``belt_speed_m_s`` the treadmill belt speed;
    ``cameras`` the rig calibration (rig.threed.camera.load_cameras) for the 3D section —
    without it the report's angles are the 2D projections and it says so; ``outages`` per
    view the spans [first, end) of trigger indices it sent no frame for (a node down), whose
    cycles the report names under ``outages``.

    Raises :class:`GaitInputError` for input that cannot be analysed at all; anything that
    cannot be computed from usable input is null in the report with its reason under
    ``unavailable``.
    """
    fps = _validate(tracks)
    if not (belt_speed_m_s is not None and math.isfinite(belt_speed_m_s) and belt_speed_m_s >= 0):
        raise GaitInputError(f"belt speed must be a number >= 0 m/s, got {belt_speed_m_s!r}")
    unavailable: dict[str, str] = {}
    quality = {"label_swaps_repaired": {}, "frames_with_nobody": {}, "frames": {}}
    side_views, frontal_views = {}, {}
    t_all = []
    for v, tr in tracks.items():
        found = tr.found
        quality["frames"][v] = int(len(found))
        quality["frames_with_nobody"][v] = int((~found).sum())
        t_all.append((float(tr.t_s[0]), float(tr.t_s[-1])))
        if not found.any():
            unavailable[f"views.{v}"] = f"{v} view: nobody in view in any frame"
            continue
        if v in SIDE_VIEWS:
            rep = LabelSwapRepair(v).fit(tr.lm)
            quality["label_swaps_repaired"][v] = rep.n_swapped_
            side_views[v] = (tr.t_s, rep.transform(tr.lm), tr.header.facing)
        else:
            frontal_views[v] = (tr.t_s, tr.lm)

    # --- events per view, fused per foot
    per_view = {}
    hs_lists = {s: {} for s in SIDES}  # foot -> view -> events
    to_lists = {s: {} for s in SIDES}
    reasons = {s: [] for s in SIDES}
    dropped = {s: {"ic": 0, "fo": 0} for s in SIDES}
    periods = []
    for v, (t, lm, facing) in side_views.items():
        det = SideViewEventDetector(facing).detect(v, t, lm)
        per_view[v] = det
        for s in SIDES:
            for kind, n in det.dropped_.get(s, {}).items():
                dropped[s][kind] += n
            if s in det.reasons_:
                reasons[s].append(det.reasons_[s])
                continue
            hs_lists[s][v] = det.heel_strike_[s]
            to_lists[s][v] = det.toe_off_[s]
            periods.append(det.stride_period_s_[s])
    period = float(np.median(periods)) if periods else math.nan
    tol = 0.2 * period if np.isfinite(period) else 0.2
    hs = {s: SessionWeightFusion().fuse(hs_lists[s], tol) for s in SIDES}
    to = {s: SessionWeightFusion().fuse(to_lists[s], tol) for s in SIDES}
    if not side_views:
        why = "needs a left or right side view" if not tracks.keys() & set(SIDE_VIEWS) else "nobody in the side views"
        for s in SIDES:
            unavailable[f"events.{s}"] = f"gait events {why}"
    else:
        for s in SIDES:
            if len(hs[s].time_s) == 0:
                unavailable[f"events.{s}"] = "; ".join(reasons[s]) or "no events found"
    walking = any(len(hs[s].time_s) >= 2 for s in SIDES)
    mode = "walking" if walking else ("standing" if (side_views or frontal_views) else "unknown")

    # --- cycles
    gaps = []
    for v, (t, lm, _) in side_views.items():
        gaps += _gaps(t, ~np.isnan(lm[:, 0, 0]))
    hs_t = {s: hs[s].time_s for s in SIDES}
    to_t = {s: to[s].time_s for s in SIDES}
    # a gap only matters when every side view missed it
    if len(side_views) > 1:
        gaps = _common_gaps(side_views)
    seg = StrideSegmentation().fit(hs_t, to_t, gaps)
    for s in SIDES:
        if walking and len(seg.strides_[s]) < 2:
            unavailable[f"cycles.{s}"] = f"fewer than two accepted {s} strides"
    st = SpatiotemporalParameters(belt_speed_m_s).compute(seg.strides_, hs_t)
    unavailable.update(st.unavailable_ if walking else {})

    sag = SagittalKinematics().compute({v: side_views[v] for v in side_views}, seg.strides_)
    fr = FrontalKinematics().compute(frontal_views, seg.strides_)
    frontal_summary = {
        "rearfoot_eversion_2d_deg": {s: mean_ci(fr.per_stride_["rearfoot_eversion_2d_deg"][s]) for s in SIDES},
        "knee_fppa_2d_deg": {s: mean_ci(fr.per_stride_["knee_fppa_2d_deg"][s]) for s in SIDES},
        "pelvic_obliquity_2d_deg": mean_ci(fr.obliquity_per_stride_),
        "pelvic_drop_2d_deg": {s: mean_ci(fr.per_stride_["pelvic_drop_2d_deg"][s]) for s in SIDES},
    }
    if walking:
        unavailable.update(fr.unavailable_)
    implausible = _withhold_implausible(sag.curves_, frontal_summary, unavailable)
    static = None
    still, why_not_still = _standing_still(frontal_views)
    if not walking and frontal_views and not still:
        unavailable["static"] = why_not_still
    elif not walking and frontal_views:
        se = StaticEvaluation().compute(frontal_views)
        static = {"values": se.values_, "labels": FRONTAL_LABELS}
        unavailable.update(se.unavailable_)
        static_for_findings = {
            "rearfoot_eversion_2d_deg": {s: _static_as_ci(se.values_.get("rearfoot_eversion_2d_deg", {}).get(s))
                                         for s in SIDES},
            "knee_fppa_2d_deg": {s: _static_as_ci(se.values_.get("knee_fppa_2d_deg", {}).get(s)) for s in SIDES},
            "pelvic_obliquity_2d_deg": _static_as_ci(se.values_.get("pelvic_obliquity_2d_deg")),
        }
    elif not walking:
        unavailable["static"] = "static evaluation needs the rear or front view"
    else:
        unavailable["static"] = "walking capture: static evaluation needs a standing capture"

    si = st.symmetry_index_pct_ if walking else {}
    si_ci = st.symmetry_index_ci95_pct_ if walking else {}
    k3d = _kinematics_3d(tracks, side_views, cameras, seg.strides_, hs_t, fps, belt_speed_m_s,
                         unavailable) if walking else None
    if k3d is not None:
        implausible += _withhold_implausible(k3d.curves_, k3d.summary_, unavailable, HUMAN_RANGE_3D_DEG,
                                             "kinematics.3d")
    findings_source = "3d" if k3d is not None else "2d"  # frontal findings from 3D when calibrated
    fnd = ClinicalFindings().compute(si, si_ci, (k3d.summary_ if k3d is not None else frontal_summary) if walking
                                     else (static_for_findings if static else {}),
                                     si_n=st.symmetry_index_n_ if walking else None, source=findings_source)
    if walking:
        unavailable.update(fnd.unavailable_)

    ps = st.per_side_
    spatio = {
        "cadence_steps_per_min": st.cadence_steps_per_min_,
        "cadence_ci95_steps_per_min": st.cadence_ci_,
        "walking_speed_m_s": belt_speed_m_s if walking else math.nan,
        "belt_speed_m_s": belt_speed_m_s,
        "double_support_pct": st.double_support_pct_["mean"],
        "double_support_ci95_pct": st.double_support_pct_["ci"],
        "symmetry_index_pct": si,
        "symmetry_index_ci95_pct": si_ci,
        "cv_pct": st.cv_pct_,
    }
    for m in ("stride_time_s", "step_time_s", "stance_pct", "swing_pct", "stride_length_m", "step_length_m"):
        spatio[m] = {s: ps[m][s]["mean"] for s in SIDES}
        spatio[m.rsplit("_", 1)[0] + "_ci95_" + m.rsplit("_", 1)[1]] = {s: ps[m][s]["ci"] for s in SIDES}
        spatio[m.rsplit("_", 1)[0] + "_sd_" + m.rsplit("_", 1)[1]] = {s: ps[m][s]["sd"] for s in SIDES}
    if k3d is not None:  # from the feet's 3D positions (rig.threed.kinematics.steps_3d)
        sm3 = k3d.summary_
        spatio["step_length_3d_m"] = {s: sm3["step_length_3d_m"][s]["mean"] for s in SIDES}
        spatio["step_length_3d_ci95_m"] = {s: sm3["step_length_3d_m"][s]["ci"] for s in SIDES}
        spatio["step_width_3d_m"] = {s: sm3["step_width_by_side_3d_m"][s]["mean"] for s in SIDES}
        spatio["step_width_3d_ci95_m"] = {s: sm3["step_width_by_side_3d_m"][s]["ci"] for s in SIDES}
    if not walking:
        spatio = {k: (math.nan if not isinstance(v, dict) else {kk: math.nan for kk in v}) for k, v in spatio.items()}
        spatio["belt_speed_m_s"] = belt_speed_m_s
        unavailable["spatiotemporal"] = "no walking detected: " + ("; ".join(
            sorted({r for s in SIDES for r in reasons[s]})) or "no side view")
    per_stride = {s: {**st.per_stride_[s],
                      "rearfoot_eversion_2d_deg": fr.per_stride_["rearfoot_eversion_2d_deg"][s],
                      "knee_fppa_2d_deg": fr.per_stride_["knee_fppa_2d_deg"][s],
                      "pelvic_drop_2d_deg": fr.per_stride_["pelvic_drop_2d_deg"][s]} for s in SIDES}
    per_stride["pelvic_obliquity_2d_deg"] = fr.obliquity_per_stride_
    t0 = min(a for a, _ in t_all)
    t1 = max(b for _, b in t_all)
    data = {
        "format": REPORT_FORMAT,
        "mode": mode if (walking or still) else "neither walking nor standing still",
        "views": sorted(tracks),
        "fps": fps,
        "t_start_s": t0, "t_end_s": t1, "duration_s": t1 - t0,
        "belt_speed_m_s": belt_speed_m_s,
        "events": {s: {"heel_strike_s": hs[s].time_s, "toe_off_s": to[s].time_s,
                       "heel_strike_views": hs[s].source, "toe_off_views": to[s].source,
                       "heel_strike_confidence": hs[s].confidence, "toe_off_confidence": to[s].confidence,
                       "initial_contact_type": hs[s].contact} for s in SIDES},
        "events_note": ("heel_strike_s is the initial contact as a force plate defines it, whichever part "
                        "of the foot lands first (initial_contact_type: heel or forefoot); toe_off_s is "
                        "foot off. Events whose timing could not be trusted are dropped, never guessed, "
                        "and counted under quality.events_dropped (per view that saw them)."),
        "cycles_used": {s: len(seg.strides_[s]) for s in SIDES},
        "cycles_rejected": {s: int(sum(seg.rejected_[s].values())) for s in SIDES},
        "cycles_rejected_reasons": {s: dict(seg.rejected_[s]) for s in SIDES},
        "spatiotemporal": spatio,
        "kinematics": {
            "source": "3d" if k3d is not None else "2d",
            "note": ("3D joint angles from the calibrated cameras under '3d'; the 2D projections are kept beside them."
                     if k3d is not None else
                     "All angles are 2D projections onto a camera's image plane, not 3D joint angles."),
            "3d": k3d.to_dict() if k3d is not None else None,
            "cycle_pct": list(range(101)),
            "sagittal": sag.curves_ if walking else {},
            "frontal": fr.curves_ if walking else {},
            "frontal_summary": frontal_summary if walking else {},
            "labels": {**SAGITTAL_LABELS, **FRONTAL_LABELS},
        },
        "static": static,
        "findings": fnd.findings_,
        "findings_source": findings_source,
        "per_stride": per_stride,
        "unavailable": unavailable,
        "outages": outage_cycles(outages or {}, fps, hs_t, seg.strides_),
        "quality": {**quality, "events_dropped": dropped, "implausible_angles": implausible},
    }
    return GaitReport(data)


def _kinematics_3d(tracks, side_views, cameras, strides, hs_t, fps, belt_speed_m_s, unavailable):
    """The 3D section (side views with their label swaps repaired), or None with the reason."""
    if not cameras:
        unavailable["kinematics.3d"] = "rig not calibrated (gaitrig calibrate): angles are 2D projections"
        return None
    from rig.threed.report3d import Kinematics3D
    views = {v: (tr.index, tr.t_s, side_views[v][1] if v in side_views else tr.lm) for v, tr in tracks.items()}
    k3d = Kinematics3D().compute(views, cameras, strides, hs_t, fps, belt_speed_m_s)
    if k3d.unavailable_:
        unavailable.update(k3d.unavailable_)
        return None
    return k3d


# What a human joint can do, generously (2D projections included): a value beyond it is a
# measurement problem (a landmark on the wrong body part, a swapped label), not a finding.
HUMAN_RANGE_DEG = {
    "hip_flexion_2d_deg": (-45.0, 130.0), "knee_flexion_2d_deg": (-20.0, 150.0),
    "ankle_dorsiflexion_2d_deg": (-70.0, 50.0), "rearfoot_eversion_2d_deg": (-30.0, 30.0),
    "knee_fppa_2d_deg": (-35.0, 35.0), "pelvic_obliquity_2d_deg": (-20.0, 20.0), "pelvic_drop_2d_deg": (-20.0, 20.0),
}
# the same for the calibrated rig's 3D angles (curves and per-stride summaries)
HUMAN_RANGE_3D_DEG = {
    "hip_flexion_deg": (-45.0, 130.0), "hip_adduction_deg": (-50.0, 50.0), "knee_flexion_deg": (-20.0, 150.0),
    "knee_valgus_deg": (-35.0, 35.0), "ankle_dorsiflexion_deg": (-70.0, 50.0),
    "ankle_internal_rotation_deg": (-60.0, 60.0), "rearfoot_eversion_deg": (-30.0, 30.0),
    "foot_progression_deg": (-45.0, 60.0), "pelvic_obliquity_deg": (-20.0, 20.0),
    "rearfoot_eversion_3d_deg": (-30.0, 30.0), "knee_valgus_3d_deg": (-35.0, 35.0),
    "foot_progression_3d_deg": (-45.0, 60.0), "pelvic_drop_3d_deg": (-20.0, 20.0),
    "pelvic_obliquity_3d_deg": (-20.0, 20.0),
}


def _withhold_implausible(curves: dict, frontal_summary: dict, unavailable: dict,
                          ranges: dict = HUMAN_RANGE_DEG, prefix: str = "kinematics") -> list[str]:
    """Null every angle (curve or summary) outside ``ranges``, say why under ``unavailable``
    and return what was withheld (for ``quality.implausible_angles``)."""
    out = []

    def check(name, side, values):
        lo, hi = ranges[name]
        v = np.asarray([x for x in np.ravel(values) if x is not None], float)
        v = v[np.isfinite(v)]
        if len(v) and (v.min() < lo or v.max() > hi):
            key = f"{prefix}.{name}" + (f".{side}" if side else "")
            unavailable[key] = (f"{name}{' ' + side if side else ''} reaches {v.min():.0f}..{v.max():.0f}°, outside what a "
                                f"human joint does ({lo:g}..{hi:g}°): a measurement problem, not reported")
            out.append(key)
            return True
        return False

    for name, per_side in curves.items():
        for side, c in per_side.items():
            if c.get("mean") is not None and name in ranges and check(name, side, c["mean"]):
                per_side[side] = {**c, "mean": None, "sd": None}
    for name, per_side in frontal_summary.items():
        items = per_side.items() if "mean" not in per_side else [(None, per_side)]
        for side, summ in items:
            if name not in ranges:
                continue
            m = summ.get("mean")
            if m is not None and np.isfinite(m) and check(name, side, [m]):
                summ.update(mean=math.nan, ci=[math.nan, math.nan])
    return out


def _standing_still(frontal_views, max_frac: float = 0.08) -> tuple[bool, str]:
    """A standing capture: the hip midpoint moves less than ``max_frac`` of the hip-ankle
    length (5-95 % range) in every frontal view."""
    for v, (t, lm) in frontal_views.items():
        mx, my = 0.5 * (lm[:, 23, 0] + lm[:, 24, 0]), 0.5 * (lm[:, 23, 1] + lm[:, 24, 1])
        leg = np.nanmedian(np.hypot(lm[:, 23, 0] - lm[:, 27, 0], lm[:, 23, 1] - lm[:, 27, 1]))
        if not np.isfinite(leg) or np.isfinite(mx).sum() < 5:
            continue
        rx = np.subtract(*np.nanpercentile(mx, [95, 5]))
        ry = np.subtract(*np.nanpercentile(my, [95, 5]))
        if max(rx, ry) > max_frac * leg:
            return False, (f"the subject is neither walking on the belt nor standing still ({v} view: hips "
                           f"move {max(rx, ry) / leg * 100:.0f} % of the leg length); no static evaluation")
    return True, ""


def _static_as_ci(v):
    if not v:
        return {}
    return {"mean": v["median"], "ci": [v["p2_5"], v["p97_5"]]}


def _common_gaps(side_views) -> list[tuple[float, float]]:
    """Gaps where no side view sees anybody (frames aligned on time)."""
    ts = [sv[0] for sv in side_views.values()]
    t = np.unique(np.concatenate(ts))
    seen = np.zeros(len(t), bool)
    for tv, lm, _ in side_views.values():
        seen[np.searchsorted(t, tv[~np.isnan(lm[:, 0, 0])])] = True
    return _gaps(t, seen)
