"""Two sessions compared, as a PDF to file or hand over: which sessions (patient, condition,
date), every measure's difference, interval, MDC and verdict, and how "changed" is decided.

The rows are the compare page's own :class:`~.comparison.ComparisonRow` objects, printed
with the same formatting, so the PDF cannot say something the tablet does not.
"""
from __future__ import annotations

import time
from typing import Sequence

from .comparison import MDC_NOTE, METHOD, ComparisonRow
from .formatting import MISSING, clock, interval, number
from .pdf_report import GaitPdf, ReportHeader

READING = ("Differences are B − A. Verdicts: {method}. “No change detected” is not “no change”: a change "
           "smaller than the MDC cannot be told from measurement error. Angles are 2D projections of video. {mdc}")
TABLE_HEADER = ("Measure", "Side", "A", "B", "B − A", "95 % CI", "MDC", "Result")
TABLE_WIDTHS_MM = (44, 13, 16, 16, 17, 31, 13, 30)


def render_comparison_pdf(a: ReportHeader, b: ReportHeader, rows: Sequence[ComparisonRow]) -> bytes:
    pdf = GaitPdf(f"gaitrig · comparison of sessions {a.session_id} and {b.session_id} · "
                  f"printed {clock(time.time())}")
    pdf.add_page()
    pdf.font(18, True)
    pdf.cell(0, 10, pdf.t(f"Comparison · session {a.session_id} (A) and {b.session_id} (B)"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.rows(["", "A", "B"], _session_rows(a, b), (28, 76, 76), align=("LEFT", "LEFT", "LEFT"))
    pdf.heading("Changed (beyond the stride spread and the MDC)")
    changed = [r for r in rows if r.changed]
    pdf.para("; ".join(_change(r) for r in changed) if changed else "No change detected between A and B.")
    pdf.heading("All measures")
    pdf.rows(TABLE_HEADER, [_measure_row(r) for r in rows], TABLE_WIDTHS_MM,
             align=("LEFT", "LEFT", *["RIGHT"] * 5, "LEFT"))
    pdf.ln(2)
    pdf.para(READING.format(method=METHOD, mdc=MDC_NOTE), 8)
    return bytes(pdf.output())


def _change(r: ComparisonRow) -> str:
    unit = r.unit if r.unit == "°" else " " + r.unit
    return (f"{r.label}{', ' + r.side if r.side else ''}: {number(r.difference, r.digits, True)}{unit} "
            f"(95 % CI {interval(r.ci, r.digits, True)}; MDC {number(r.mdc95, r.mdc_digits)})")


def _session_rows(a: ReportHeader, b: ReportHeader) -> list[list[str]]:
    def patient(h: ReportHeader) -> str:
        if not h.patient_name:
            return "not assigned to a patient"
        return f"{h.patient_name} ({h.clinic_id})" if h.clinic_id else h.patient_name

    return [["Session", str(a.session_id), str(b.session_id)],
            ["Recorded", clock(a.started_t), clock(b.started_t)],
            ["Patient", patient(a), patient(b)],
            ["Condition", a.condition or MISSING, b.condition or MISSING]]


def _measure_row(r: ComparisonRow) -> list[str]:
    strides = f", strides {r.n_a} / {r.n_b}" if r.n_a is not None else ""
    return [f"{r.label} ({r.unit}{strides})", r.side or "both", number(r.mean_a, r.digits),
            number(r.mean_b, r.digits), number(r.difference, r.digits, True), interval(r.ci, r.digits, True),
            number(r.mdc95, r.mdc_digits), r.result]
