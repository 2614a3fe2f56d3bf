"""A stored gait report (the JSON contract of docs/gait-analysis.md) arranged for the page.

The templates only lay out what this module hands them, so every read of the report is here,
written defensively: a key the report lacks gives a missing value on the page, never an
error, and nothing is computed that the engine did not compute — except the toe-off marker on
the charts, which is the report's own mean stance %.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup

from rig.gait.norms import SOURCE as NORMS_SOURCE
from rig.gait.norms import NormBands, bands_or_reason
from rig.gait.norms_stp import SOURCE as STP_SOURCE
from rig.gait.norms_stp import StpBands, stp_bands_or_reason
from rig.gait.suggestions import Suggestion, suggestions

from .charts import CycleSeries, NormArea, cycle_chart
from .formatting import interval, is_number, number

SIDES = ("left", "right")


@dataclass(frozen=True)
class Measure:
    """A spatiotemporal measure: its report key, how it reads and how precisely."""

    key: str
    label: str
    unit: str
    digits: int

    @property
    def ci_key(self) -> str:
        base, unit = self.key.rsplit("_", 1)
        return f"{base}_ci95_{unit}"


PER_SIDE_MEASURES = (
    Measure("stride_time_s", "Stride time", "s", 2),
    Measure("step_time_s", "Step time", "s", 2),
    Measure("stance_pct", "Stance", "% of stride", 1),
    Measure("swing_pct", "Swing", "% of stride", 1),
    Measure("stride_length_m", "Stride length", "m", 2),
    Measure("step_length_m", "Step length", "m", 2),
)
MEASURES_3D = (  # in the report only when the rig is calibrated (feet's 3D positions + belt speed)
    Measure("step_length_3d_m", "Step length, 3D (feet + belt)", "m", 2),
    Measure("step_width_3d_m", "Step width, 3D", "m", 2),
)
SAGITTAL = ("hip_flexion_2d_deg", "knee_flexion_2d_deg", "ankle_dorsiflexion_2d_deg")
FRONTAL = ("rearfoot_eversion_2d_deg", "knee_fppa_2d_deg", "pelvic_obliquity_2d_deg")
STANCE_SCALED = {"rearfoot_eversion_2d_deg"}  # read in stance; meaningless with the foot in the air
FRONTAL_SUMMARY_LABELS = {
    "rearfoot_eversion_2d_deg": "Rearfoot eversion in stance (rear view)",
    "knee_fppa_2d_deg": "Peak knee FPPA, valgus + (front view)",
    "pelvic_drop_2d_deg": "Pelvic drop in stance (rear view)",
    "pelvic_obliquity_2d_deg": "Pelvic obliquity, + = left hip higher",
}
FINDINGS_SOURCE = {  # what the frontal findings were judged from (the report's findings_source)
    "3d": ("3D", "Findings judged from 3D joint angles (calibrated cameras)."),
    "2d": ("2D", "Findings judged from 2D projections of video, not 3D joint angles."),
}
LEVEL_MEANING = {
    "present": "the whole 95 % confidence interval lies beyond the threshold",
    "possible": "the estimate is beyond the threshold, but its 95 % confidence interval reaches back "
                "across it: the spread between strides allows no more than “possible”",
}


@dataclass(frozen=True)
class SideValue:
    value: float | None
    ci: list | None


@dataclass(frozen=True)
class SpatiotemporalRow:
    measure: Measure
    sides: dict[str, SideValue]
    symmetry_index: SideValue  # % with its 95 % CI
    cv_pct: dict[str, float | None] | None
    typical: tuple[float, float] | None = None  # healthy walkers' range at the belt speed


@dataclass(frozen=True)
class FindingView:
    code: str
    level: str
    level_meaning: str
    text: str
    value: str
    ci95: str
    threshold: str
    reference: str
    where: str  # the side or the measure


@dataclass(frozen=True)
class ChartView:
    key: str
    label: str
    svg: Markup
    strides: dict[str, int | None]
    views: dict[str, str | None]
    typical_range_deg: tuple[float, float] | None = None  # the normative band's extremes


@dataclass(frozen=True)
class FrontalSummaryRow:
    key: str
    label: str
    sides: dict[str, dict] | None  # side -> {mean, sd, n, ci}
    both: dict | None  # measures of the whole pelvis


@dataclass
class ReportView:
    """What the report page shows of one session's report."""

    mode: str
    views: list[str]
    duration_s: float | None
    cadence: SideValue
    double_support: SideValue
    walking_speed_m_s: float | None
    belt_speed_m_s: float | None
    rows: list[SpatiotemporalRow]
    findings: list[FindingView]
    findings_not_judged: dict[str, str]
    findings_source: str  # "3D" or "2D"
    findings_source_text: str
    kinematics_note: str
    sagittal: list[ChartView]
    frontal: list[ChartView]
    frontal_summary: list[FrontalSummaryRow]
    static: list[dict] | None
    cycles_used: dict[str, int | None]
    cycles_rejected: dict[str, int | None]
    cycles_rejected_reasons: dict[str, dict[str, int]]
    unavailable: dict[str, str]
    quality: dict = field(default_factory=dict)
    suggestions: list[Suggestion] = field(default_factory=list)  # decision support; the clinician decides
    norms: NormBands | str = ""  # the sagittal bands at the belt speed, or why there are none
    stp: StpBands | str = ""  # the spatiotemporal typical ranges at the belt speed, or why there are none

    def typical(self, key: str) -> tuple[float, float] | None:
        """Typical range of one spatiotemporal value (report key), None without one."""
        return self.stp.ranges.get(key) if isinstance(self.stp, StpBands) else None

    @property
    def stp_text(self) -> str:
        """The line under the spatiotemporal table naming the typical ranges and their source."""
        if isinstance(self.stp, StpBands):
            return f"Typical: {self.stp.label}. Source: {STP_SOURCE}."
        return self.stp

    @property
    def norms_text(self) -> str:
        """The line under the sagittal charts naming the grey band and its source."""
        if isinstance(self.norms, NormBands):
            return f"Grey band: {self.norms.label}. Source: {NORMS_SOURCE}."
        return self.norms


def _get(d: object, *keys: str) -> object:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _side_value(value: object, ci: object) -> SideValue:
    return SideValue(value if is_number(value) else None, ci if isinstance(ci, list) else None)


def _finding(f: dict) -> FindingView:
    unit = f.get("unit") or ""
    sym = "°" if unit == "deg" else f" {unit}" if unit else ""
    digits = 1
    thr = f.get("threshold")
    if not is_number(thr):
        threshold = "—"
    elif f.get("code") == "asymmetry":  # either side may be the larger one
        threshold = f"±{number(thr, digits)}{sym}"
    else:
        threshold = f"{number(thr, digits)}{sym}"
    signed = f.get("code") in ("asymmetry", "pelvic_obliquity")
    where = f.get("side") or (f.get("measure") or "").replace("_", " ")
    level = f.get("level") or "unknown"
    return FindingView(
        code=str(f.get("code", "")), level=level, level_meaning=LEVEL_MEANING.get(level, ""),
        text=str(f.get("text", "")), value=number(f.get("value"), digits, signed) + sym,
        ci95=interval(f.get("ci95"), digits, signed) + (sym if f.get("ci95") else ""),
        threshold=threshold, reference=str(f.get("reference", "")), where=str(where))


def _stance_pct(report: dict, side: str) -> float | None:
    v = _get(report, "spatiotemporal", "stance_pct", side)
    return v if is_number(v) else None


def _charts(report: dict, plane: str, keys: tuple[str, ...], toe_off: bool,
            norms: NormBands | str = "") -> list[ChartView]:
    kin = report.get("kinematics") or {}
    curves = kin.get(plane) or {}
    labels = kin.get("labels") or {}
    x = kin.get("cycle_pct") or list(range(101))
    charts = []
    for key in keys:
        per_side = curves.get(key)
        if not isinstance(per_side, dict):
            continue
        series = [CycleSeries(s, per_side[s].get("mean") or [], per_side[s].get("sd"),
                              _stance_pct(report, s) if toe_off else None)
                  for s in SIDES if isinstance(per_side.get(s), dict)]
        label = labels.get(key, key)
        band = norms.curves.get(key) if isinstance(norms, NormBands) else None
        area = NormArea(band.x_pct, band.low, band.high, norms.label) if band else None
        charts.append(ChartView(
            key=key, label=label, svg=cycle_chart(series, x, unit="degrees", description=label,
                                                  scale_to_stance=key in STANCE_SCALED, norm=area),
            strides={s: _get(per_side, s, "n") for s in SIDES}, views={s: _get(per_side, s, "view") for s in SIDES},
            typical_range_deg=band.range_deg if band else None))
    return charts


def _static(report: dict) -> list[dict] | None:
    static = report.get("static")
    if not isinstance(static, dict):
        return None
    rows = []
    labels = static.get("labels") or {}
    for key, v in (static.get("values") or {}).items():
        if not isinstance(v, dict):
            continue
        per_side = {s: v[s] for s in SIDES if isinstance(v.get(s), dict)}
        rows.append({"key": key, "label": labels.get(key, key), "sides": per_side or None,
                     "both": None if per_side else v})
    return rows


def report_view(report: dict, norms: NormBands | str | None = None, stp: StpBands | str | None = None,
                age: int | None = None) -> ReportView:
    """Arrange ``report`` (GaitReport.to_dict()) for the report page; ``norms`` and ``stp`` default
    to the cached normative bands and spatiotemporal ranges at the report's belt speed (or the
    reason there are none), ``age`` (years, from the patient's date of birth) picks the ranges'
    age group."""
    if norms is None:
        norms = bands_or_reason(report.get("belt_speed_m_s"))
    if stp is None:
        stp = stp_bands_or_reason(report.get("belt_speed_m_s"), age)
    stp_ranges = stp.ranges if isinstance(stp, StpBands) else {}
    sp = report.get("spatiotemporal") or {}
    rows = []
    for m in PER_SIDE_MEASURES + tuple(m for m in MEASURES_3D if isinstance(sp.get(m.key), dict)):
        cv = _get(sp, "cv_pct", m.key)
        rows.append(SpatiotemporalRow(
            measure=m,
            sides={s: _side_value(_get(sp, m.key, s), _get(sp, m.ci_key, s)) for s in SIDES},
            symmetry_index=_side_value(_get(sp, "symmetry_index_pct", m.key),
                                       _get(sp, "symmetry_index_ci95_pct", m.key)),
            cv_pct={s: cv.get(s) for s in SIDES} if isinstance(cv, dict) else None,
            typical=stp_ranges.get(m.key)))
    kin = report.get("kinematics") or {}
    fs = kin.get("frontal_summary") or {}
    frontal_summary = []
    for key, label in FRONTAL_SUMMARY_LABELS.items():
        v = fs.get(key)
        if not isinstance(v, dict):
            continue
        sides = {s: v[s] for s in SIDES if isinstance(v.get(s), dict)}
        frontal_summary.append(FrontalSummaryRow(key, label, sides or None, None if sides else v))
    unavailable = {str(k): str(v) for k, v in (report.get("unavailable") or {}).items()}
    findings = [f for f in (report.get("findings") or []) if isinstance(f, dict)]
    findings.sort(key=lambda f: (f.get("level") != "present", str(f.get("code"))))
    # a report stored before 3D existed has no findings_source: it was judged in 2D
    source, source_text = FINDINGS_SOURCE.get(report.get("findings_source"), FINDINGS_SOURCE["2d"])
    if source == "2D" and unavailable.get("kinematics.3d"):
        source_text += f" No 3D: {unavailable['kinematics.3d'].rstrip('.')}."
    return ReportView(
        mode=str(report.get("mode", "")),
        views=list(report.get("views") or []),
        duration_s=report.get("duration_s"),
        cadence=_side_value(sp.get("cadence_steps_per_min"), sp.get("cadence_ci95_steps_per_min")),
        double_support=_side_value(sp.get("double_support_pct"), sp.get("double_support_ci95_pct")),
        walking_speed_m_s=sp.get("walking_speed_m_s") if is_number(sp.get("walking_speed_m_s")) else None,
        belt_speed_m_s=report.get("belt_speed_m_s") if is_number(report.get("belt_speed_m_s")) else None,
        rows=rows,
        findings=[_finding(f) for f in findings],
        findings_not_judged={k: v for k, v in unavailable.items() if k.startswith("findings.")},
        findings_source=source,
        findings_source_text=source_text,
        kinematics_note=str(kin.get("note", "")),
        sagittal=_charts(report, "sagittal", SAGITTAL, toe_off=True, norms=norms),
        frontal=_charts(report, "frontal", FRONTAL, toe_off=True),
        frontal_summary=frontal_summary,
        static=_static(report),
        cycles_used={s: _get(report, "cycles_used", s) for s in SIDES},
        cycles_rejected={s: _get(report, "cycles_rejected", s) for s in SIDES},
        cycles_rejected_reasons={s: dict(_get(report, "cycles_rejected_reasons", s) or {}) for s in SIDES},
        unavailable=unavailable,
        quality=report.get("quality") or {},
        suggestions=suggestions(report),
        norms=norms,
        stp=stp,
    )
