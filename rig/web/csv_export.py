"""A session's numbers as CSV for spreadsheets: every measure of the report and every stride.

``measures.csv`` flattens the report's ``spatiotemporal`` block and the per-stride frontal
summary, one row per value (a 95 % CI fills ``ci95_low``/``ci95_high``), so nothing the
engine computed is left out and nothing is made up. ``strides.csv`` is long format — side,
measure, stride number, value — because the measures of one stride do not always come from
the same set of strides (a frontal angle needs the rear view), so lining them up in columns
would pair values that do not belong together.

The normative bands (:mod:`rig.gait.norms`) at the belt speed follow as ``normative_band``
rows: one per curve and cycle point (``measure`` = curve@percent) with ``typical_low`` /
``typical_high`` filled, after the rows that say how they were chosen (non-dimensional speed,
leg length); the columns stay empty for every measure without a published band. The
spatiotemporal rows whose measure has a typical range (:mod:`rig.gait.norms_stp`, by the belt
speed and the patient's age) carry it in the same two columns.
"""
from __future__ import annotations

import csv
import io
from typing import Iterator

from rig.gait.norms import NormBands, bands_or_reason
from rig.gait.norms_stp import StpBands, stp_bands_or_reason

from .formatting import is_number

MEASURE_COLUMNS = ("group", "measure", "side", "value", "ci95_low", "ci95_high", "n", "typical_low", "typical_high")
STRIDE_COLUMNS = ("side", "measure", "stride", "value")
SIDES = ("left", "right")


def _cell(v: object) -> str:
    return repr(float(v)) if is_number(v) else ""


def _rows(group: str, name: str, value: object, side: str = "both") -> Iterator[tuple]:
    if isinstance(value, dict) and value and set(value) <= {"left", "right"}:
        for s in SIDES:
            if s in value:
                yield from _rows(group, name, value[s], s)
    elif isinstance(value, dict) and "mean" in value:  # a per-stride summary: mean, sd, n, ci
        ci = value.get("ci") if isinstance(value.get("ci"), list) else [None, None]
        yield group, name, side, _cell(value.get("mean")), _cell(ci[0]), _cell(ci[-1]), value.get("n") or ""
        if is_number(value.get("sd")):
            yield group, name.replace("_2d_deg", "_sd_2d_deg"), side, _cell(value["sd"]), "", "", value.get("n") or ""
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _rows(group, f"{name}.{k}", v, side)
    elif isinstance(value, list) and len(value) == 2:
        yield group, name, side, "", _cell(value[0]), _cell(value[1]), ""
    elif is_number(value) or value is None:
        yield group, name, side, _cell(value), "", "", ""


def _band_rows(norms: NormBands) -> Iterator[tuple]:
    yield "normative_band", "speed_nondimensional", "both", _cell(norms.speed_nd), "", "", "", "", ""
    yield "normative_band", "leg_length_m", "both", _cell(norms.leg_length_m), "", "", "", "", ""
    for key, band in norms.curves.items():
        for x, lo, hi in zip(band.x_pct, band.low, band.high):
            yield "normative_band", f"{key}@{x:g}%", "both", "", "", "", "", _cell(lo), _cell(hi)


def measures_csv(report: dict, norms: NormBands | str | None = None, stp: StpBands | str | None = None,
                 age: int | None = None) -> str:
    """``norms`` and ``stp`` default to the cached bands and spatiotemporal ranges at the report's
    belt speed (none if unavailable); ``age`` (years) picks the ranges' age group."""
    if norms is None:
        norms = bands_or_reason(report.get("belt_speed_m_s"))
    if stp is None:
        stp = stp_bands_or_reason(report.get("belt_speed_m_s"), age)
    ranges = stp.ranges if isinstance(stp, StpBands) else {}
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(MEASURE_COLUMNS)
    for key, value in (report.get("spatiotemporal") or {}).items():
        typical = tuple(_cell(v) for v in ranges[key]) if key in ranges else ("", "")
        w.writerows(r + typical for r in _rows("spatiotemporal", key, value))
    for key, value in ((report.get("kinematics") or {}).get("frontal_summary") or {}).items():
        w.writerows(r + ("", "") for r in _rows("frontal_per_stride", key, value))
    for key in ("cycles_used", "cycles_rejected"):
        w.writerows(r + ("", "") for r in _rows("cycles", key, report.get(key)))
    if isinstance(norms, NormBands):
        w.writerows(_band_rows(norms))
    return out.getvalue()


def strides_csv(report: dict) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(STRIDE_COLUMNS)
    per = report.get("per_stride") or {}
    for side in (*SIDES, "both"):
        block = per.get(side) if side != "both" else {k: v for k, v in per.items() if k not in SIDES}
        for measure, values in (block or {}).items():
            if isinstance(values, list):
                w.writerows((side, measure, i + 1, _cell(v)) for i, v in enumerate(values))
    return out.getvalue()
