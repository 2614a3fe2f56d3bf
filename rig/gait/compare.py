"""Two sessions of one patient (e.g. barefoot as A, orthotic as B): which measures changed.

A session's value of a measure carries two errors: the stride-to-stride spread (the
stride-level interval, Welch) and the measurement error that shifts every stride of a
session alike (the SEM of :mod:`rig.gait.repeatability`, from re-recording the same walk).
Each measure's difference B − A is tested against both at once,
z = d / √(SE_A² + SE_B² + 2·SEM²) on Student's t with Welch–Satterthwaite degrees of
freedom, and the measures of one comparison are tested together with the false-discovery
rate held at ``fdr`` by the Benjamini–Hochberg step-up (Benjamini Y, Hochberg Y (1995),
*Controlling the false discovery rate*, J R Stat Soc B 57:289-300). A measure is
"changed" only when it passes that test, its stride-level interval excludes 0 and |d|
exceeds the MDC95. Too few strides in either session: "cannot tell".
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .estimates import Estimate, key_of, measure_keys, session_estimates
from .repeatability import load_sem, mdc95
from .report import _clean

COMPARE_FORMAT = "gaitrig-gait-compare/2"
CHANGED, NO_CHANGE, CANNOT_TELL, NOT_MEASURED = ("changed", "no change detected", "cannot tell (too few strides)",
                                                 "not measured")
MIN_STRIDES = 4


def benjamini_hochberg(p: list[float], q: float) -> list[bool]:
    """Which hypotheses the Benjamini–Hochberg step-up rejects at false-discovery rate ``q``."""
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p)
    passed = np.asarray(p)[order] <= q * np.arange(1, m + 1) / m
    k = int(np.max(np.nonzero(passed)[0])) + 1 if passed.any() else 0
    out = np.zeros(m, bool)
    out[order[:k]] = True
    return out.tolist()


def _welch(a: Estimate, b: Estimate, extra_var: float = 0.0) -> tuple[float, float]:
    """SE of b − a (plus a variance known exactly) and its Welch–Satterthwaite dof."""
    va, vb = a.se ** 2, b.se ** 2
    var = va + vb + extra_var
    den = va ** 2 / max(a.dof, 1e-9) + vb ** 2 / max(b.dof, 1e-9)
    return math.sqrt(var), (var ** 2 / den if den > 0 else 1e9)


def _row(measure: str, side: str | None, a: Estimate, b: Estimate, sem: float, level: float) -> dict:
    row = {"measure": measure, "side": side, "n_a": a.n, "n_b": b.n, "mean_a": a.value, "mean_b": b.value,
           "difference": math.nan, "ci": [math.nan, math.nan], "sem": sem, "mdc95": mdc95(sem),
           "p": math.nan, "verdict": CANNOT_TELL, "changed": None}
    if a.n == 0 or b.n == 0:
        missing = " and ".join(x for x, e in (("A", a), ("B", b)) if e.n == 0)
        row.update(verdict=NOT_MEASURED, reason=f"not measured in session {missing}")
        return row
    if min(a.n, b.n) < MIN_STRIDES or not (math.isfinite(a.se) and math.isfinite(b.se)):
        row["reason"] = f"needs at least {MIN_STRIDES} strides with this measure in both sessions (A {a.n}, B {b.n})"
        return row
    d = b.value - a.value
    se, dof = _welch(a, b)
    h = float(stats.t.ppf(0.5 + level / 2, dof)) * se
    se_tot, dof_tot = _welch(a, b, 2 * sem ** 2)
    p = float(2 * stats.t.sf(abs(d) / se_tot, dof_tot)) if se_tot > 0 else (0.0 if d else 1.0)
    row.update(difference=d, ci=[d - h, d + h], p=p)
    return row


def compare_reports(a: dict, b: dict, level: float = 0.95, names=("A", "B"), fdr: float = 0.05,
                    sem: dict[str, float] | None = None) -> dict:
    """Per-measure differences B − A with their stride-level interval, the MDC95 and a verdict.

    ``a`` and ``b`` are :meth:`GaitReport.to_dict` outputs of one patient in two conditions;
    ``sem`` overrides the shipped repeatability table (measure key -> SEM). Each row has
    ``difference``, ``ci`` (stride-level, ``level``), ``sem``, ``mdc95``, ``p`` (both
    errors), ``verdict`` (changed / no change detected / cannot tell (too few strides) /
    not measured) and ``changed`` (True / False / None when not compared).
    """
    sem = sem if sem is not None else load_sem()
    ea, eb = session_estimates(a), session_estimates(b)
    rows = [_row(m, s, ea[key_of(m, s)], eb[key_of(m, s)], sem[key_of(m, s)], level) for m, s in measure_keys()]
    tested = [r for r in rows if math.isfinite(r["p"])]
    for r, rejected in zip(tested, benjamini_hochberg([r["p"] for r in tested], fdr)):
        d, (lo, hi) = r["difference"], r["ci"]
        changed = bool(rejected and abs(d) > r["mdc95"] and (lo > 0 or hi < 0))
        r.update(changed=changed, verdict=CHANGED if changed else NO_CHANGE)
    out = {"format": COMPARE_FORMAT, "a": names[0], "b": names[1], "level": level, "fdr": fdr,
           "method": ("changed = Benjamini-Hochberg at the FDR over the measures of this comparison on "
                      "d / sqrt(SE_A^2 + SE_B^2 + 2 SEM^2), the stride-level interval excludes 0, and |d| > MDC95"),
           "measures": rows}
    return _clean(out)
