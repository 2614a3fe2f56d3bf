"""How far the rig's reading of a measure moves between recordings of the same walk: the
standard error of measurement (SEM) and the minimal detectable change (MDC95).

Weir JP (2005), *Quantifying test-retest reliability using the intraclass correlation
coefficient and the SEM*, J Strength Cond Res 19:231-240: the SEM is the square root of
the within-subject mean square, and a change between two sessions must exceed
MDC95 = 1.96 · √2 · SEM to be told from measurement error with 95 % confidence
(Haley SM, Fragala-Pinkham MA (2006), Phys Ther 86:735-743).

Here the "subject" is a walk whose strides are fixed and the repeated "recordings" re-draw
only the measurement error (landmark noise, dropped frames, label swaps): the SEM is the
part of a session's value that the stride-level interval does not see, because it shifts
every stride of a session the same way (event timing templates, the view an event comes
from, label repairs). ``benchmarks/bench_repeatability.py`` makes the table
(``rig/gait/mdc.json``, ``docs/repeatability.md``).
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import stats

MDC_FORMAT = "gaitrig-mdc/1"
MDC_PATH = Path(__file__).with_name("mdc.json")
Z95 = 1.959963984540054


def mdc95(sem: float) -> float:
    """Minimal detectable change at 95 % confidence of a difference of two sessions."""
    return Z95 * math.sqrt(2.0) * sem


class Repeatability:
    """Pooled within-walk SD (the SEM) of every measure over repeated recordings.

    ``fit(recordings, source_of)`` takes walk name -> list of per-recording dicts (measure
    key -> value; NaN or missing = not measured) and walk name -> the source of the walk
    (e.g. "walker", "real"; default one source). Within a source the SEM is
    √(Σ_walks Σ_recordings (x − x̄_walk)² / Σ_walks (n_walk − 1)), the within-walk mean
    square of a one-way ANOVA (Weir 2005), over walks with at least ``min_recordings``
    values of it, raised to its upper ``upper`` confidence bound (√(dof / χ²_(1−upper)(dof)):
    a table made from a few dozen re-recordings must not understate the error). The
    table's SEM is the largest over the sources, because a comparison must hold for walks
    like the hardest of them (the simulated walker is cleaner than real feet).

    Attributes (after ``fit``)
    --------------------------
    sem_ : key -> SEM (upper bound). mdc95_ : key -> 1.96·√2·SEM. sem_by_source_ : key ->
    source -> pooled SEM (the estimate itself).
    sd_by_walk_ : key -> walk -> within-walk SD. n_ : key -> recordings used.
    """

    def __init__(self, min_recordings: int = 5, upper: float = 0.95) -> None:
        self.min_recordings = min_recordings
        self.upper = upper

    def fit(self, recordings: dict[str, list[dict[str, float]]],
            source_of: dict[str, str] | None = None) -> "Repeatability":
        source_of = source_of or {}
        keys = sorted({k for recs in recordings.values() for r in recs for k in r})
        self.sem_, self.mdc95_, self.sem_by_source_, self.sd_by_walk_, self.n_ = {}, {}, {}, {}, {}
        for k in keys:
            pooled, n, by_walk = {}, 0, {}  # source -> [sum of squares, dof]
            for walk, recs in recordings.items():
                x = np.array([r.get(k, math.nan) for r in recs], float)
                x = x[np.isfinite(x)]
                if len(x) < self.min_recordings:
                    continue
                acc = pooled.setdefault(source_of.get(walk, ""), [0.0, 0])
                acc[0] += float(np.sum((x - x.mean()) ** 2))
                acc[1] += len(x) - 1
                n += len(x)
                by_walk[walk] = float(x.std(ddof=1))
            if pooled:
                self.sem_by_source_[k] = {src: math.sqrt(ss / dof) for src, (ss, dof) in pooled.items()}
                self.sem_[k] = max(math.sqrt(ss / stats.chi2.ppf(1 - self.upper, dof)) for ss, dof in pooled.values())
                self.mdc95_[k] = mdc95(self.sem_[k])
                self.sd_by_walk_[k], self.n_[k] = by_walk, n
        return self


class MdcTableError(ValueError):
    """The repeatability table is missing or malformed."""


@lru_cache(maxsize=4)
def load_sem(path: str | None = None) -> dict[str, float]:
    """Measure key -> SEM from the shipped table (``rig/gait/mdc.json``) or ``path``."""
    p = Path(path) if path else MDC_PATH
    try:
        d = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise MdcTableError(f"{p}: cannot read the repeatability table ({e})") from e
    if not isinstance(d, dict) or d.get("format") != MDC_FORMAT or not isinstance(d.get("measures"), dict):
        raise MdcTableError(f"{p}: not a {MDC_FORMAT} table (regenerate: benchmarks/bench_repeatability.py)")
    return {k: float(v["sem"]) for k, v in d["measures"].items()}
