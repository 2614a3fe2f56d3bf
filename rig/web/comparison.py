"""Two conditions side by side (e.g. barefoot as A, orthotic as B) for the compare page.

Every row, cadence included, comes from :func:`rig.gait.compare_reports` (B − A), so the
page and ``gaitrig compare`` give the same verdicts: a measure is "changed" only when the
difference is beyond both its stride-level interval and the rig's measurement error
between recordings (MDC95, ``docs/repeatability.md``), with the false-discovery rate held
over the measures of the comparison. "No change detected" is not "no change": a change
smaller than the MDC cannot be told from measurement error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rig.gait import compare_reports
from rig.gait.compare import CHANGED

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
    "step_length_symmetry_index_pct": ("Step-length asymmetry, (R − L)/mean", "%", 1),
}
METHOD = ("changed = beyond both the stride-level 95 % CI (Welch) and the measure's MDC95 (measurement error "
          "between recordings of the same walk), false-discovery rate 5 % over the measures (Benjamini–Hochberg)")
MDC_NOTE = ("MDC = 1.96 · √2 · SEM, the SEM measured by re-recording the same walks with fresh measurement error "
            "(docs/repeatability.md).")


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
    mdc95: float | None
    verdict: str  # changed / no change detected / cannot tell (too few strides) / not measured
    reason: str | None

    @property
    def changed(self) -> bool:
        return self.verdict == CHANGED

    @property
    def result(self) -> str:
        """The Result column's text, on the page and in the PDF: the verdict, and why when
        there is no difference to judge."""
        return f"{self.verdict}: {self.reason}" if self.difference is None and not self.changed else self.verdict

    @property
    def mdc_digits(self) -> int:
        """Decimals that show the MDC to two significant digits (at least the measure's own)."""
        if self.mdc95 is None or self.mdc95 <= 0:
            return self.digits
        return max(self.digits, 1 - math.floor(math.log10(self.mdc95)))


def _num(v: object) -> float | None:
    return float(v) if is_number(v) else None


def _is_ci(ci: object) -> bool:
    return isinstance(ci, list) and len(ci) == 2 and all(is_number(c) for c in ci)


def comparison_rows(a: dict, b: dict) -> list[ComparisonRow]:
    """Every measure :func:`compare_reports` compares, in its order (cadence first)."""
    rows = []
    for m in compare_reports(a, b, level=COMPARE_LEVEL)["measures"]:
        label, unit, digits = MEASURE_LABELS.get(m["measure"], (m["measure"].replace("_", " "), "", 2))
        rows.append(ComparisonRow(
            measure=m["measure"], side=m.get("side"), label=label, unit=unit, digits=digits,
            mean_a=_num(m.get("mean_a")), mean_b=_num(m.get("mean_b")), difference=_num(m.get("difference")),
            ci=m.get("ci") if _is_ci(m.get("ci")) else None, n_a=m.get("n_a"), n_b=m.get("n_b"),
            mdc95=_num(m.get("mdc95")), verdict=m["verdict"], reason=m.get("reason")))
    return rows
