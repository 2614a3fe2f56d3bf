"""Gait-cycle charts as inline SVG, drawn on the server from the report.

No script and no chart library: the tablet shows them offline and they print as they look.
Each side is a mean line with a ± 1 SD band over 0-100 % of the gait cycle; the right side is
dashed as well as coloured, so the two stay apart in grey print and for colour-blind readers
(Okabe-Ito blue and vermillion). Gaps (None) in a curve break the line rather than being
bridged: the chart never draws a value the report does not have. A normative band
(:mod:`rig.gait.norms`), when given, is a grey area behind everything, so the sides'
own curves and bands lie over it.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Sequence
from xml.sax.saxutils import escape

from markupsafe import Markup

from .formatting import is_number

SIDE_STYLE = {"left": ("#0072B2", ""), "right": ("#D55E00", "7 4")}  # colour, dash pattern
WIDTH, HEIGHT = 480, 270
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 60, 14, 14, 48


@dataclass(frozen=True)
class CycleSeries:
    """One side's curve: ``mean`` and ``sd`` at the chart's x positions (None = no value)."""

    side: str  # "left" or "right"
    mean: Sequence[float | None]
    sd: Sequence[float | None] | None = None
    toe_off_pct: float | None = None  # the side's mean stance %, drawn as a dotted line


@dataclass(frozen=True)
class NormArea:
    """A typical range to shade: ``low``/``high`` at ``x_pct`` (% of the gait cycle)."""

    x_pct: Sequence[float]
    low: Sequence[float]
    high: Sequence[float]
    label: str


def _nice_step(span: float, target_ticks: int = 5) -> float:
    raw = span / max(target_ticks, 1)
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def _y_range(series: Sequence[CycleSeries], x_pct: Sequence[float],
             x_max: float | None, norm: NormArea | None = None) -> tuple[float, float, float]:
    values = []
    if norm is not None:
        values += [v for x, v in zip(norm.x_pct, norm.low) if x_max is None or x <= x_max]
        values += [v for x, v in zip(norm.x_pct, norm.high) if x_max is None or x <= x_max]
    for s in series:
        for i, m in enumerate(s.mean):
            if not is_number(m) or (x_max is not None and i < len(x_pct) and x_pct[i] > x_max):
                continue
            sd = s.sd[i] if s.sd is not None and i < len(s.sd) and is_number(s.sd[i]) else 0.0
            values += [m - sd, m + sd]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-6:
        lo, hi = lo - 1.0, hi + 1.0
    step = _nice_step(hi - lo)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def _runs(points: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """Consecutive defined points; None splits the curve."""
    runs, cur = [], []
    for p in points:
        if p is None:
            if cur:
                runs.append(cur)
            cur = []
        else:
            cur.append(p)
    if cur:
        runs.append(cur)
    return runs


def _path(pts: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)


def cycle_chart(series: Sequence[CycleSeries], x_pct: Sequence[float], *, unit: str = "°",
                description: str = "", scale_to_stance: bool = False, norm: NormArea | None = None) -> Markup:
    """An SVG chart of ``series`` against ``x_pct`` (0-100 % of the gait cycle).

    ``scale_to_stance``: the y axis fits the stance phase (up to the later toe-off) and the
    swing part is clipped at the frame — for angles that mean little with the foot in the air
    (the rearfoot angle), whose swing swings would otherwise flatten the stance values.
    """
    toe_offs = [s.toe_off_pct for s in series if is_number(s.toe_off_pct)]
    y0, y1, step = _y_range(series, x_pct, max(toe_offs) if scale_to_stance and toe_offs else None, norm)
    clip_id = f"plot-{zlib.crc32(f'{description}|{y0}|{y1}'.encode()):08x}"  # unique per chart on a page, stable
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def sx(x: float) -> float:
        return MARGIN_LEFT + plot_w * x / 100.0

    def sy(y: float) -> float:
        return MARGIN_TOP + plot_h * (y1 - y) / (y1 - y0)

    out = [f'<svg class="cycle-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
           f'aria-label="{escape(description, {chr(34): "&quot;"})}" xmlns="http://www.w3.org/2000/svg">',
           f"<title>{escape(description)}</title>"]
    # grid and axes
    n_ticks = int(round((y1 - y0) / step))
    for k in range(n_ticks + 1):
        y = y0 + k * step
        py = sy(y)
        zero = abs(y) < step * 1e-6
        out.append(f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{py:.1f}" y2="{py:.1f}" '
                   f'stroke="{"#666" if zero else "#ddd"}" stroke-width="{1.2 if zero else 1}"/>')
        label = f"{y:g}".replace("-", "−")
        out.append(f'<text x="{MARGIN_LEFT - 6}" y="{py + 5:.1f}" text-anchor="end" font-size="15">{label}</text>')
    for x in range(0, 101, 20):
        px = sx(x)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{MARGIN_TOP}" y2="{HEIGHT - MARGIN_BOTTOM}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{px:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 19}" text-anchor="middle" '
                   f'font-size="15">{x}</text>')
    out.append(f'<text x="{MARGIN_LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" font-size="15">'
               f"% of gait cycle (heel strike to heel strike)</text>")
    out.append(f'<text x="13" y="{MARGIN_TOP + plot_h / 2:.1f}" text-anchor="middle" font-size="15" '
               f'transform="rotate(-90 13 {MARGIN_TOP + plot_h / 2:.1f})">{escape(unit)}</text>')
    out.append(f'<rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
               'stroke="#999"/>')
    out.append(f'<clipPath id="{clip_id}"><rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" '
               f'height="{plot_h}"/></clipPath><g clip-path="url(#{clip_id})">')
    if norm is not None:  # the typical range first: everything of the patient lies over it
        upper = [(sx(x), sy(v)) for x, v in zip(norm.x_pct, norm.high)]
        lower = [(sx(x), sy(v)) for x, v in reversed(list(zip(norm.x_pct, norm.low)))]
        out.append(f'<polygon class="norm-band" points="{_path(upper + lower)}" fill="#777" '
                   f'fill-opacity="0.22" stroke="#777" stroke-width="0.8"><title>{escape(norm.label)}</title></polygon>')
    # bands first, so no line hides under another side's band
    for s in series:
        colour, _ = SIDE_STYLE.get(s.side, ("#333", ""))
        if s.sd is None:
            continue
        band = [(x, m, d) if is_number(m) and is_number(d) else None
                for x, m, d in zip(x_pct, s.mean, s.sd)]
        for run in _runs(band):
            upper = [(sx(x), sy(m + d)) for x, m, d in run]
            lower = [(sx(x), sy(m - d)) for x, m, d in reversed(run)]
            out.append(f'<polygon class="sd-band {s.side}" points="{_path(upper + lower)}" fill="{colour}" '
                       'fill-opacity="0.18" stroke="none"/>')
    for s in series:
        colour, dash = SIDE_STYLE.get(s.side, ("#333", ""))
        if is_number(s.toe_off_pct):
            px = sx(s.toe_off_pct)
            out.append(f'<line class="toe-off {s.side}" x1="{px:.1f}" x2="{px:.1f}" y1="{MARGIN_TOP}" '
                       f'y2="{HEIGHT - MARGIN_BOTTOM}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="2 4"/>')
        pts = [(sx(x), sy(m)) if is_number(m) else None for x, m in zip(x_pct, s.mean)]
        for run in _runs(pts):
            out.append(f'<polyline class="mean-curve {s.side}" points="{_path(run)}" fill="none" stroke="{colour}" '
                       f'stroke-width="3" stroke-linejoin="round"'
                       + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
    out.append("</g></svg>")
    return Markup("".join(out))


def legend_swatch(side: str) -> Markup:
    """A short line in the side's colour and dash, for legends in the page text."""
    colour, dash = SIDE_STYLE.get(side, ("#333", ""))
    return Markup(f'<svg class="swatch" viewBox="0 0 36 12" width="36" height="12" aria-hidden="true">'
                  f'<line x1="1" x2="35" y1="6" y2="6" stroke="{colour}" stroke-width="3"'
                  + (f' stroke-dasharray="{dash}"' if dash else "") + "/></svg>")
