"""Clinical findings with cited thresholds and their stride-level uncertainty.

A finding is reported as ``"present"`` only when the whole 95 % confidence interval lies
beyond the threshold, as ``"possible"`` when the point estimate is beyond it but the
interval reaches back across it (the spread does not allow more), and not at all
otherwise. Thresholds are conventions, named with their source; clinics may change them.

Asymmetry compares the two sides' means over strides (steps), so it is only judged with
at least ``min_strides`` of them per side and a defined confidence interval: two or three
strides of a short capture say nothing about a side difference of a few per cent, and no
finding (not even ``"possible"``) is made from them; the report says why instead.
"""
from __future__ import annotations

import math

THRESHOLDS = {
    # Robinson et al. 1987 symmetry index; the 10 % cut-off is a common convention
    # (e.g. Herzog et al. 1989, Med Sci Sports Exerc 21:110-114), not a physiological limit.
    "symmetry_index_pct": (10.0, "Robinson et al. 1987 symmetry index; 10 % is a common convention"),
    # Rearfoot (calcaneal) eversion against the shank in stance: a few degrees is normal;
    # beyond ~8° in the 2D rear view is a common clinical flag for excessive pronation.
    "rearfoot_eversion_2d_deg": (8.0, "clinical convention for excessive rearfoot eversion (2D rear view)"),
    # Persistent frontal pelvic tilt: ~2° corresponds to ~7 mm of leg-length difference over a
    # 0.2 m hip-joint separation; clinically relevant discrepancies start near 5-10 mm
    # (Gurney 2002, Gait Posture 15:195-206).
    "pelvic_obliquity_2d_deg": (2.0, "~7 mm leg-length difference over 0.2 m hip width (Gurney 2002)"),
    # Dynamic knee valgus (FPPA) in the front view, beyond ~10° flagged (Willson & Davis 2008
    # used FPPA for dynamic valgus; normal walking values are a few degrees).
    "knee_fppa_2d_deg": (10.0, "dynamic knee valgus, FPPA beyond 10° (convention; Willson & Davis 2008)"),
    # The same measures in 3D when the rig is calibrated (rig.threed.kinematics): the same
    # angles taken in the anatomical plane instead of one camera's image, so the same cut-offs.
    "rearfoot_eversion_3d_deg": (8.0, "clinical convention for excessive rearfoot eversion (3D, across the foot)"),
    "pelvic_obliquity_3d_deg": (2.0, "~7 mm leg-length difference over 0.2 m hip width (Gurney 2002)"),
    "knee_valgus_3d_deg": (10.0, "dynamic knee valgus beyond 10° (convention; Willson & Davis 2008), 3D"),
}
# frontal findings: (code, what, the 2D summary key, the 3D summary key)
FRONTAL_FINDINGS = (("rearfoot_eversion", "rearfoot eversion in stance", "rearfoot_eversion_2d_deg",
                     "rearfoot_eversion_3d_deg"),
                    ("knee_valgus", "peak knee valgus in stance", "knee_fppa_2d_deg", "knee_valgus_3d_deg"))
PELVIS_KEY = {"2d": "pelvic_obliquity_2d_deg", "3d": "pelvic_obliquity_3d_deg"}
SOURCE_TEXT = {"2d": "2D projection", "3d": "3D"}


def _level(value: float, ci: list[float], thr: float) -> str | None:
    """'present', 'possible' or None for |value| beyond thr given its CI."""
    if value is None or not math.isfinite(value):
        return None
    lo, hi = ci if ci and all(c is not None and math.isfinite(c) for c in ci) else (math.nan, math.nan)
    if value >= thr:
        return "present" if math.isfinite(lo) and lo >= thr else "possible"
    if value <= -thr:
        return "present" if math.isfinite(hi) and hi <= -thr else "possible"
    return None


class ClinicalFindings:
    """Findings from a report's summaries: asymmetry (per measure), excessive rearfoot
    eversion (per side), persistent pelvic obliquity, dynamic knee valgus — the frontal
    ones from 3D when the rig is calibrated, else from the 2D projections.

    Attributes (after ``compute``): ``findings_`` list of dicts.
    """

    def __init__(self, thresholds: dict | None = None, min_strides: int = 4) -> None:
        self.thresholds = {**THRESHOLDS, **(thresholds or {})}
        self.min_strides = min_strides

    def compute(self, si: dict, si_ci: dict, frontal: dict, si_n: dict | None = None,
                source: str = "2d") -> "ClinicalFindings":
        """``si_n``: measure -> {"left": n, "right": n}, the strides (steps) behind each
        symmetry index; measures with fewer than ``min_strides`` on a side, or without a
        confidence interval, give no asymmetry finding and a reason in ``unavailable_``.
        ``source``: "3d" when ``frontal`` holds the calibrated rig's 3D summaries
        (``*_3d_deg`` keys), "2d" for the camera projections; each finding says which."""
        if source not in SOURCE_TEXT:
            raise ValueError(f"source must be '2d' or '3d', got {source!r}")
        how = SOURCE_TEXT[source]
        out = []
        self.unavailable_ = {}
        thr, ref = self.thresholds["symmetry_index_pct"]
        for m, v in si.items():
            if v is None or not math.isfinite(v):
                continue
            n = (si_n or {}).get(m)
            ci = si_ci.get(m)
            if n is not None and min(n.values()) < self.min_strides:
                self.unavailable_[f"findings.asymmetry.{m}"] = (
                    f"too few strides to judge asymmetry (left {n['left']}, right {n['right']}; needs at least "
                    f"{self.min_strides} per side)")
                continue
            if not ci or not all(c is not None and math.isfinite(c) for c in ci):
                self.unavailable_[f"findings.asymmetry.{m}"] = "no confidence interval for the symmetry index"
                continue
            lvl = _level(v, ci, thr)
            if lvl:
                longer = "right" if v > 0 else "left"
                out.append(dict(code="asymmetry", measure=m, level=lvl, value=v, ci95=si_ci.get(m),
                                threshold=thr, unit="%", reference=ref,
                                text=f"{'Asymmetric' if lvl == 'present' else 'Possibly asymmetric'} {m}: "
                                     f"symmetry index {v:+.1f} % (95 % CI {_fmt(si_ci.get(m))}), {longer} larger; "
                                     f"threshold ±{thr:g} %"))
        for code, what, key_2d, key_3d in FRONTAL_FINDINGS:
            key = key_3d if source == "3d" else key_2d
            what = what if source == "3d" else what.replace("knee valgus", "knee FPPA (valgus)")
            thr, ref = self.thresholds[key]
            for side, s in frontal.get(key, {}).items():
                v = s.get("mean")
                if v is None or not math.isfinite(v) or v <= 0:
                    continue
                if not self._enough(s, f"findings.{code}.{side}", what):
                    continue
                lvl = _level(v, s.get("ci"), thr)
                if lvl:
                    out.append(dict(code=f"excessive_{code}", side=side, level=lvl, value=v, ci95=s.get("ci"),
                                    threshold=thr, unit="deg", reference=ref, source=source,
                                    text=f"{'Excessive' if lvl == 'present' else 'Possibly excessive'} {side} {what}: "
                                         f"{v:.1f}° (95 % CI {_fmt(s.get('ci'))}), {how}; threshold {thr:g}°"))
        po = frontal.get(PELVIS_KEY[source])
        if po:
            thr, ref = self.thresholds[PELVIS_KEY[source]]
            v = po.get("mean")
            lvl = _level(v, po.get("ci"), thr) if self._enough(po, "findings.pelvic_obliquity", "pelvic obliquity") else None
            if lvl:
                high = "left" if v > 0 else "right"
                out.append(dict(code="pelvic_obliquity", level=lvl, value=v, ci95=po.get("ci"), threshold=thr,
                                unit="deg", reference=ref, source=source,
                                text=f"{'Persistent' if lvl == 'present' else 'Possible persistent'} pelvic obliquity "
                                     f"{v:+.1f}° ({high} hip higher; 95 % CI {_fmt(po.get('ci'))}), {how}: "
                                     f"a sign of a {('right' if high == 'left' else 'left')} short leg to check clinically"))
        self.findings_ = out
        return self

    def _enough(self, summary: dict, key: str, what: str) -> bool:
        """A frontal finding needs ``min_strides`` strides behind its mean (static captures
        have no stride count and are judged on their CI); else the reason is recorded."""
        n = summary.get("n")
        if n is None or n >= self.min_strides:
            return True
        self.unavailable_[key] = f"too few strides to judge {what} (n = {n}; needs at least {self.min_strides})"
        return False


def _fmt(ci) -> str:
    if not ci or any(c is None or not math.isfinite(c) for c in ci):
        return "n/a"
    return f"{ci[0]:.1f} to {ci[1]:.1f}"
