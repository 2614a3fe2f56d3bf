"""Two conditions side by side (e.g. barefoot as A, orthotic as B) for the compare page.

The per-stride measures come from :func:`rig.gait.compare_reports` (Welch CI over strides of
B − A). Cadence is not a per-stride measure there, so its row is the difference of the two
reports' own cadence estimates with the two 95 % CIs combined in quadrature (independent
sessions, normal approximation) — labelled as such on the page. A measure is "changed" only
where its interval excludes 0; otherwise the page says the data show no clear change, which
is not the same as "no change": a wide interval cannot rule out the ≈2° an orthosis makes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rig.gait import compare_reports

from .formatting import is_number

COMPARE_LEVEL = 0.95
MEASURE_LABELS: dict[str, tuple[str, str, int]] = {  # key -> label, unit, digits
    "cadence_steps_per_min": ("Cadence", "steps/min", 1),
    "stride_time_s": ("Stride time", "s", 3),
    "step_time_s": ("Step time", "s", 3),
    "stance_pct": ("Stance", "% of stride", 1),
    "step_length_m": ("Step length", "m", 3),
    "double_support_pct": ("Double support", "% of stride", 1),
    "rearfoot_eversion_2d_deg": ("Rearfoot eversion (2D rear view)", "°", 1),
    "knee_fppa_2d_deg": ("Knee FPPA, valgus + (2D front view)", "°", 1),
    "pelvic_drop_2d_deg": ("Pelvic drop (2D rear view)", "°", 1),
    "pelvic_obliquity_2d_deg": ("Pelvic obliquity, + = left hip higher (2D)", "°", 1),
}
CADENCE_METHOD = ("difference of the two sessions' cadence estimates, their 95 % CIs combined in quadrature "
                  "(normal approximation)")
STRIDE_METHOD = "Welch 95 % CI over strides"


@dataclass(frozen=True)
class ComparisonRow:
    measure: str
    side: str | None
    label: str
    unit: str
    digits: int
    mean_a: float | None
    mean_b: float | None
    difference: float | None
    ci: list | None
    n_a: int | None
    n_b: int | None
    changed: bool | None  # None: not comparable (see reason)
    reason: str | None
    method: str

    @property
    def status(self) -> str:
        if self.changed is None:
            return "not compared"
        return "changed" if self.changed else "no clear change"


def _num(v: object) -> float | None:
    return float(v) if is_number(v) else None


def cadence_row(a: dict, b: dict) -> ComparisonRow:
    """Cadence B − A from the two reports' estimates and CIs."""
    label, unit, digits = MEASURE_LABELS["cadence_steps_per_min"]
    sa, sb = a.get("spatiotemporal") or {}, b.get("spatiotemporal") or {}
    ma, mb = _num(sa.get("cadence_steps_per_min")), _num(sb.get("cadence_steps_per_min"))
    ca, cb = sa.get("cadence_ci95_steps_per_min"), sb.get("cadence_ci95_steps_per_min")
    row = dict(measure="cadence_steps_per_min", side=None, label=label, unit=unit, digits=digits, mean_a=ma,
               mean_b=mb, n_a=None, n_b=None, method=CADENCE_METHOD)
    if ma is None or mb is None or not _is_ci(ca) or not _is_ci(cb):
        return ComparisonRow(**row, difference=None, ci=None, changed=None,
                             reason="needs a cadence with its 95 % CI in both sessions")
    half = math.hypot((ca[1] - ca[0]) / 2, (cb[1] - cb[0]) / 2)
    d = mb - ma
    return ComparisonRow(**row, difference=d, ci=[d - half, d + half], changed=bool(d - half > 0 or d + half < 0),
                         reason=None)


def _is_ci(ci: object) -> bool:
    return isinstance(ci, list) and len(ci) == 2 and all(is_number(c) for c in ci)


def comparison_rows(a: dict, b: dict) -> list[ComparisonRow]:
    """Cadence first, then every measure :func:`compare_reports` compares, in its order."""
    rows = [cadence_row(a, b)]
    for m in compare_reports(a, b, level=COMPARE_LEVEL)["measures"]:
        label, unit, digits = MEASURE_LABELS.get(m["measure"], (m["measure"].replace("_", " "), "", 2))
        rows.append(ComparisonRow(
            measure=m["measure"], side=m.get("side"), label=label, unit=unit, digits=digits,
            mean_a=_num(m.get("mean_a")), mean_b=_num(m.get("mean_b")), difference=_num(m.get("difference")),
            ci=m.get("ci") if _is_ci(m.get("ci")) else None, n_a=m.get("n_a"), n_b=m.get("n_b"),
            changed=m.get("changed"), reason=m.get("reason"), method=STRIDE_METHOD))
    return rows
