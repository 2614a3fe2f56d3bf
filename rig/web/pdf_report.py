"""The gait report as a PDF to hand to the patient or file: who and in what condition, the
findings, the timing table, the per-stride frontal angles and the joint-angle curves.

Drawn with fpdf2 (pure Python, maintained; no browser or LaTeX on the rig). The text comes
from the same formatting as the pages (:mod:`.formatting`, :mod:`.report_view`), so the PDF
and the tablet read the same numbers. Fonts: DejaVu Sans from the OS when present (any
script a name may be written in); otherwise the PDF core font with the text reduced to
Latin-1, so a missing font never stops a report.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from fpdf import FPDF
from fpdf.fonts import FontFace

from rig.gait.norms import Band, NormBands

from .formatting import MISSING, clock, duration, interval, is_number, number
from .report_view import FRONTAL, SAGITTAL, SIDES, STANCE_SCALED, report_view

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
SIDE_RGB = {"left": (0, 114, 178), "right": (213, 94, 0)}  # Okabe-Ito, as on the pages
LATIN1 = {"−": "-", "–": "-", "—": "-", "≥": ">=", "≤": "<=", "“": '"', "”": '"', "’": "'", "≈": "~", "…": "..."}
CHART_W_MM, CHART_H_MM = 85.0, 56.0
TITLE_H_MM = 8.0


@dataclass(frozen=True)
class ReportHeader:
    """Who walked, in what, and when — printed at the top of the report."""

    session_id: int
    started_t: float
    ended_t: float | None
    patient_name: str | None = None
    birth_date: str | None = None
    clinic_id: str | None = None
    condition: str | None = None


class GaitPdf(FPDF):
    """A4 with the rig's font, headings, paragraphs and tables — the report's and the comparison's."""

    def __init__(self, footer_text: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer_text
        self.unicode = (FONT_DIR / "DejaVuSans.ttf").exists() and (FONT_DIR / "DejaVuSans-Bold.ttf").exists()
        if self.unicode:
            self.add_font("body", "", str(FONT_DIR / "DejaVuSans.ttf"))
            self.add_font("body", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.family = "body" if self.unicode else "helvetica"
        self.set_auto_page_break(True, margin=18)
        self.set_margins(15, 15, 15)

    def t(self, text: object) -> str:
        text = str(text)
        if self.unicode:
            return text
        for a, b in LATIN1.items():
            text = text.replace(a, b)
        return text.encode("latin-1", "replace").decode("latin-1")

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", size)

    def footer(self) -> None:
        self.set_y(-13)
        self.font(7.5)
        self.set_text_color(90)
        self.cell(0, 4, self.t(f"{self.footer_text}   ·   page {self.page_no()}/{{nb}}"), align="C")
        self.set_text_color(0)

    def heading(self, text: str) -> None:
        self.ln(3)
        self.font(12.5, True)
        self.cell(0, 7, self.t(text), new_x="LMARGIN", new_y="NEXT")
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(1.5)

    def para(self, text: str, size: float = 9.5, bold: bool = False) -> None:
        self.font(size, bold)
        self.multi_cell(0, size * 0.5, self.t(text), new_x="LMARGIN", new_y="NEXT", align="L")

    def facts(self, pairs: Sequence[tuple[str, str]], label_w_mm: float = 32) -> None:
        """``label  value`` lines, the label bold."""
        for label, value in pairs:
            self.font(9.5, True)
            self.cell(label_w_mm, 5.5, self.t(label))
            self.font(9.5)
            self.cell(0, 5.5, self.t(value), new_x="LMARGIN", new_y="NEXT")

    def rows(self, header: Sequence[str], rows: list[Sequence[str]], widths: Sequence[float],
             align: Sequence[str] | None = None) -> None:
        """A table; columns after the first right-aligned (numbers) unless ``align`` says otherwise."""
        self.font(8.5)
        with self.table(col_widths=widths, text_align=align or ("LEFT", *["RIGHT"] * (len(header) - 1)),
                        headings_style=FontFace(emphasis="BOLD", fill_color=(235, 238, 242)),
                        line_height=4.6, padding=0.8) as table:
            for r in [header, *rows]:
                row = table.row()
                for c in r:
                    row.cell(self.t(c))


def render_pdf(report: dict, header: ReportHeader, age: int | None = None) -> bytes:
    """``age`` (years at the session, from the date of birth) picks the typical ranges' age group."""
    view = report_view(report, age=age)
    angles = ("findings from 3D joint angles, charts 2D projections" if view.findings_source == "3D"
              else "joint angles are 2D projections of video")
    pdf = GaitPdf(f"gaitrig · session {header.session_id} · printed {clock(time.time())} · {angles}")
    pdf.add_page()
    _title(pdf, header, view)
    _findings(pdf, view)
    _suggestions(pdf, view)
    _timing(pdf, view)
    _frontal(pdf, view)
    _curves(pdf, report, view)
    return bytes(pdf.output())


def _title(pdf: GaitPdf, h: ReportHeader, view) -> None:
    pdf.font(18, True)
    pdf.cell(0, 10, pdf.t(f"Gait report · session {h.session_id}"), new_x="LMARGIN", new_y="NEXT")
    facts = [("Patient", h.patient_name or "not assigned to a patient"),
             ("Date of birth", h.birth_date or MISSING), ("Clinic ID", h.clinic_id or MISSING),
             ("Condition", h.condition or MISSING), ("Recorded", clock(h.started_t)),
             ("Duration", duration(h.ended_t - h.started_t) if h.ended_t else MISSING),
             ("Belt speed", f"{number(view.belt_speed_m_s, 2)} m/s"), ("Views", ", ".join(view.views) or MISSING)]
    pdf.facts(facts)


def _findings(pdf: GaitPdf, view) -> None:
    pdf.heading("Findings")
    pdf.para(view.findings_source_text, 8.5, bold=True)
    if not view.findings:
        pdf.para("No findings: every measure that could be judged is within its threshold.")
    for f in view.findings:
        pdf.para(f"{f.level.upper()}: {f.text}", 10, bold=True)
        pdf.para(f"value {f.value} (95 % CI {f.ci95}), threshold {f.threshold}. Source: {f.reference}.", 8.5)
        pdf.ln(1)
    pdf.para("“present”: the whole 95 % confidence interval lies beyond the threshold; “possible”: the estimate "
             "does, but its interval reaches back across it.", 7.5)


def _suggestions(pdf: GaitPdf, view) -> None:
    if not view.suggestions:
        return
    pdf.heading("Suggestions (the clinician decides)")
    for g in view.suggestions:
        pdf.para(g.text, 9.5, bold=True)
        pdf.para(f"thresholds {g.thresholds}. Source: {g.source}.", 8)
        pdf.ln(0.5)
    pdf.para("A class is named only when the whole 95 % confidence interval over strides lies on one side of "
             "every threshold; otherwise “cannot tell”. Suggestions do not replace an examination.", 7.5)


def _timing(pdf: GaitPdf, view) -> None:
    pdf.heading("Timing and distance")
    def typical(key: str, digits: int) -> str:
        rng = view.typical(key)
        return f"{number(rng[0], digits)}–{number(rng[1], digits)}" if rng else "—"

    pdf.para(f"Cadence {number(view.cadence.value, 1)} steps/min (95 % CI {interval(view.cadence.ci, 1)}; "
             f"typical {typical('cadence_steps_per_min', 1)}) · walking speed {number(view.walking_speed_m_s, 2)} m/s"
             f" · double support {number(view.double_support.value, 1)} % (95 % CI "
             f"{interval(view.double_support.ci, 1)}; typical {typical('double_support_pct', 1)})")
    pdf.ln(1)
    rows = []
    for r in view.rows:
        m = r.measure
        rows.append([f"{m.label} ({m.unit})",
                     number(r.sides["left"].value, m.digits), interval(r.sides["left"].ci, m.digits),
                     number(r.sides["right"].value, m.digits), interval(r.sides["right"].ci, m.digits),
                     number(r.symmetry_index.value, 1, True), typical(m.key, m.digits)])
    pdf.rows(["Measure", "Left", "95 % CI", "Right", "95 % CI", "Symmetry %", "Typical"], rows,
             (46, 17, 27, 17, 27, 22, 24))
    pdf.para("Symmetry index (R−L)/mean × 100; 10 % is a common convention, not a physiological limit.", 7.5)
    pdf.para(view.stp_text, 7.5)


def _frontal(pdf: GaitPdf, view) -> None:
    if not view.frontal_summary:
        return
    pdf.heading("Frontal angles per stride (2D)")
    rows = []
    for row in view.frontal_summary:
        if row.sides:
            cells = []
            for s in SIDES:
                v = row.sides.get(s, {})
                cells += [f"{number(v.get('mean'), 1, True)} ± {number(v.get('sd'), 1)}", interval(v.get("ci"), 1, True)]
            rows.append([row.label, *cells])
        else:
            b = row.both or {}
            rows.append([row.label, f"{number(b.get('mean'), 1, True)} ± {number(b.get('sd'), 1)}",
                         interval(b.get("ci"), 1, True), "whole pelvis", ""])
    pdf.rows(["Measure (degrees)", "Left mean ± SD", "95 % CI", "Right mean ± SD", "95 % CI"], rows,
             (62, 28, 30, 28, 32))


def _curves(pdf: GaitPdf, report: dict, view) -> None:
    kin = report.get("kinematics") or {}
    labels = kin.get("labels") or {}
    charts = [(plane, key) for plane, keys in (("sagittal", SAGITTAL), ("frontal", FRONTAL)) for key in keys
              if isinstance((kin.get(plane) or {}).get(key), dict)]
    if not charts:
        return
    pdf.add_page()
    pdf.heading("Joint angles over the gait cycle (2D projections)")
    pdf.para("Mean over strides (left blue, right orange dashed) with ± 1 SD shaded; x: % of the gait cycle "
             "from heel strike to heel strike; y: degrees.", 8)
    pdf.para(view.norms_text, 8)
    bands = view.norms.curves if isinstance(view.norms, NormBands) else {}
    top = pdf.get_y() + 2
    for i, (plane, key) in enumerate(charts):
        x = pdf.l_margin + (i % 2) * (CHART_W_MM + 10)
        y = top + (i // 2) * (CHART_H_MM + 8)
        stance = [v for s in SIDES if is_number(v := ((report.get("spatiotemporal") or {}).get("stance_pct") or {}).get(s))]
        x_max = max(stance) if key in STANCE_SCALED and stance else None
        _chart(pdf, x, y, labels.get(key, key), kin[plane][key], kin.get("cycle_pct") or list(range(101)), x_max,
               bands.get(key) if plane == "sagittal" else None)


def _chart(pdf: GaitPdf, x0: float, y0: float, title: str, per_side: dict, x_pct: list,
           x_max: float | None = None, band: Band | None = None) -> None:
    """One curve chart; with ``x_max`` (stance-only angles) the y axis fits 0..x_max % and the
    rest is cut at the frame, as on the pages; ``band`` is the normative range, grey behind."""
    pdf.font(7.5, True)
    pdf.set_xy(x0, y0)
    pdf.multi_cell(CHART_W_MM, 3.6, pdf.t(title + (" (scaled to stance)" if x_max else "")), align="L")
    px, py, pw, ph = x0 + 9, y0 + TITLE_H_MM + 1, CHART_W_MM - 10, CHART_H_MM - TITLE_H_MM - 6
    values = [m + k * (sd if is_number(sd) else 0) for s in SIDES if isinstance(per_side.get(s), dict)
              for x, m, sd in zip(x_pct, per_side[s].get("mean") or [], per_side[s].get("sd") or [None] * 101)
              if is_number(m) and (x_max is None or x <= x_max) for k in (-1, 1)]
    if band is not None:
        values += [*band.low, *band.high]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    lo, hi = (lo - 1, hi + 1) if hi - lo < 1e-6 else (lo, hi)

    def sx(v: float) -> float:
        return px + pw * v / 100.0

    def sy(v: float) -> float:
        return py + ph * (hi - v) / (hi - lo)

    pdf.set_draw_color(150)
    pdf.set_line_width(0.2)
    pdf.rect(px, py, pw, ph)
    pdf.font(6.5)
    for v in (lo, (lo + hi) / 2, hi):
        pdf.set_xy(x0, sy(v) - 1.5)
        pdf.cell(8.5, 3, pdf.t(number(v, 0)), align="R")
    for v in (0, 50, 100):
        pdf.set_xy(sx(v) - 5, py + ph + 0.5)
        pdf.cell(10, 3, f"{v} %", align="C")
    with pdf.rect_clip(px, py, pw, ph):
        if band is not None:
            pdf.set_fill_color(120)
            area = ([(sx(x), sy(v)) for x, v in zip(band.x_pct, band.high)]
                    + [(sx(x), sy(v)) for x, v in reversed(list(zip(band.x_pct, band.low)))])
            with pdf.local_context(fill_opacity=0.25):
                pdf.polygon(area, style="F")
        _curve_lines(pdf, per_side, x_pct, sx, sy)
    pdf.set_draw_color(0)
    pdf.set_line_width(0.2)


def _curve_lines(pdf: GaitPdf, per_side: dict, x_pct: list, sx, sy) -> None:
    for side in SIDES:
        curve = per_side.get(side)
        if not isinstance(curve, dict):
            continue
        rgb = SIDE_RGB[side]
        pdf.set_draw_color(*rgb)
        pdf.set_fill_color(*rgb)
        pdf.set_line_width(0.5)
        mean, sd = curve.get("mean") or [], curve.get("sd") or []
        for run in _runs(x_pct, mean, sd):
            if all(is_number(d) for _, _, d in run):
                band = [(sx(x), sy(m + d)) for x, m, d in run] + [(sx(x), sy(m - d)) for x, m, d in reversed(run)]
                with pdf.local_context(fill_opacity=0.18):
                    pdf.polygon(band, style="F")
            with pdf.local_context(dash_pattern=dict(dash=1.6, gap=1.0) if side == "right" else dict(dash=0, gap=0)):
                pdf.polyline([(sx(x), sy(m)) for x, m, _ in run])


def _runs(x_pct: list, mean: list, sd: list) -> list[list[tuple[float, float, float | None]]]:
    """Consecutive defined points (a gap breaks the line, as on the pages)."""
    runs, cur = [], []
    for i, (x, m) in enumerate(zip(x_pct, mean)):
        if is_number(m):
            cur.append((x, m, sd[i] if i < len(sd) else None))
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return [r for r in runs if len(r) > 1]
