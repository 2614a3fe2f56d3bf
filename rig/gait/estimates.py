"""What one gait report says about each measure a comparison looks at: the session's value
and its stride-level standard error.

Shared by :func:`rig.gait.compare.compare_reports` (two sessions) and the repeatability
benchmark (many re-recordings of one walk), so both read a measure the same way.

Measures (keys ``measure`` or ``measure.side``):

- per-side means over strides or steps (``stance_pct.left`` ...): SE = SD / √n, n − 1
  degrees of freedom;
- ``cadence_steps_per_min`` = 60 / mean step time over both feet; SE by the delta method;
- ``step_length_symmetry_index_pct``: (R − L) / ½(R + L) · 100 of the mean step lengths
  (Robinson et al. 1987), SE by the delta method with Welch–Satterthwaite degrees of
  freedom (as :func:`rig.gait.spatiotemporal.symmetry_index_ci`);
- ``pelvic_obliquity_2d_deg``: one value per stride of either foot.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SIDES = ("left", "right")
PER_SIDE_MEASURES = ("stride_time_s", "step_time_s", "stance_pct", "step_length_m", "double_support_pct",
                     "rearfoot_eversion_2d_deg", "knee_fppa_2d_deg", "pelvic_drop_2d_deg")
SESSION_MEASURES = ("cadence_steps_per_min", "step_length_symmetry_index_pct", "pelvic_obliquity_2d_deg")


@dataclass(frozen=True)
class Estimate:
    """A session's value of one measure: ``value`` ± ``se`` (stride-level standard error)
    from ``n`` strides or steps, ``dof`` degrees of freedom for Student's t."""

    value: float
    se: float
    n: int
    dof: float


def measure_keys() -> list[tuple[str, str | None]]:
    """(measure, side) in the order a comparison lists them: cadence first."""
    return ([("cadence_steps_per_min", None)] + [(m, s) for m in PER_SIDE_MEASURES for s in SIDES]
            + [("step_length_symmetry_index_pct", None), ("pelvic_obliquity_2d_deg", None)])


def key_of(measure: str, side: str | None) -> str:
    return f"{measure}.{side}" if side else measure


def _finite(values) -> np.ndarray:
    return np.array([v for v in (values or []) if v is not None and math.isfinite(v)], float)


def mean_estimate(values) -> Estimate:
    """Mean with SE = SD/√n; NaN SE below two values."""
    x = _finite(values)
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, 0, 0.0)
    if n == 1:
        return Estimate(float(x[0]), math.nan, 1, 0.0)
    return Estimate(float(x.mean()), float(x.std(ddof=1) / math.sqrt(n)), n, float(n - 1))


def cadence_estimate(steps_s) -> Estimate:
    """60 / mean step time (steps/min) with its delta-method SE."""
    m = mean_estimate(steps_s)
    if m.n == 0 or m.value <= 0:
        return Estimate(math.nan, math.nan, m.n, 0.0)
    return Estimate(60.0 / m.value, 60.0 * m.se / m.value ** 2, m.n, m.dof)


def symmetry_estimate(right: Estimate, left: Estimate) -> Estimate:
    """Symmetry index (R − L)/½(R + L)·100 with delta-method SE and Welch–Satterthwaite dof."""
    r, lv = right.value, left.value
    n = min(right.n, left.n)
    if not (math.isfinite(r) and math.isfinite(lv)) or r + lv == 0:
        return Estimate(math.nan, math.nan, n, 0.0)
    si = 200.0 * (r - lv) / (r + lv)
    if right.n < 2 or left.n < 2:
        return Estimate(si, math.nan, n, 0.0)
    ur = (400.0 * lv / (r + lv) ** 2 * right.se) ** 2
    ul = (400.0 * r / (r + lv) ** 2 * left.se) ** 2
    var = ur + ul
    dof = var ** 2 / (ur ** 2 / right.dof + ul ** 2 / left.dof) if var > 0 else 1e9
    return Estimate(si, math.sqrt(var), n, float(dof))


def session_estimates(report: dict) -> dict[str, Estimate]:
    """Every comparable measure of one ``gaitrig-gait/1`` report, keyed by :func:`key_of`."""
    ps = report.get("per_stride") or {}
    out: dict[str, Estimate] = {}
    for m in PER_SIDE_MEASURES:
        for s in SIDES:
            out[key_of(m, s)] = mean_estimate((ps.get(s) or {}).get(m))
    steps = [v for s in SIDES for v in ((ps.get(s) or {}).get("step_time_s") or [])]
    out["cadence_steps_per_min"] = cadence_estimate(steps)
    out["step_length_symmetry_index_pct"] = symmetry_estimate(out["step_length_m.right"], out["step_length_m.left"])
    out["pelvic_obliquity_2d_deg"] = mean_estimate(ps.get("pelvic_obliquity_2d_deg"))
    return out
