"""Gait cycles: strides from heel strike to heel strike of one foot, plausibility checks,
time normalisation to 0-100 % of the cycle."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

N_POINTS = 101  # 0, 1, ..., 100 % of the cycle


@dataclass
class Stride:
    """One stride of one foot; times in seconds on the session clock."""

    side: str
    heel_strike_s: float
    toe_off_s: float
    next_heel_strike_s: float
    contra_toe_off_s: float = float("nan")  # other foot leaves the belt (end of 1st double support)
    contra_heel_strike_s: float = float("nan")  # other foot lands (start of 2nd double support)

    @property
    def stride_time_s(self) -> float:
        return self.next_heel_strike_s - self.heel_strike_s

    @property
    def stance_pct(self) -> float:
        return 100.0 * (self.toe_off_s - self.heel_strike_s) / self.stride_time_s

    @property
    def double_support_pct(self) -> float:
        ds = (self.contra_toe_off_s - self.heel_strike_s) + (self.toe_off_s - self.contra_heel_strike_s)
        return 100.0 * ds / self.stride_time_s


class StrideSegmentation:
    """Strides per foot, heel strike to heel strike, with implausible ones rejected.

    A stride is rejected (and counted by reason) when its duration is outside
    [``min_stride_s``, ``max_stride_s``] or deviates from the median stride by more than
    ``max_rel_dev`` (a missed or spurious heel strike), when it holds no toe-off or more
    than one of its foot, or when its stance is outside [``min_stance_pct``,
    ``max_stance_pct``]. Strides crossing a data gap longer than ``max_gap_s`` are rejected.
    Heel strikes of the two feet alternate, so a stride holding two or more heel strikes
    of the other foot has missed a heel strike of its own and is rejected rather than
    reported wrong (on a short capture every stride of a foot can be such a double one,
    and then the median check alone cannot see it). A stride with none keeps its own
    measures (the other foot's heel strike may be the one missed) but no double support.

    Attributes (after ``fit``)
    --------------------------
    strides_ : dict side -> list[Stride]. rejected_ : dict side -> Counter(reason -> n).
    """

    def __init__(self, min_stride_s: float = 0.6, max_stride_s: float = 2.5, max_rel_dev: float = 0.25,
                 min_stance_pct: float = 40.0, max_stance_pct: float = 90.0, max_gap_s: float = 0.3) -> None:
        self.min_stride_s = min_stride_s
        self.max_stride_s = max_stride_s
        self.max_rel_dev = max_rel_dev
        self.min_stance_pct = min_stance_pct
        self.max_stance_pct = max_stance_pct
        self.max_gap_s = max_gap_s

    def fit(self, hs: dict[str, np.ndarray], to: dict[str, np.ndarray],
            gaps: list[tuple[float, float]] | None = None) -> "StrideSegmentation":
        self.strides_, self.rejected_ = {}, {}
        gaps = gaps or []
        for side, other in (("left", "right"), ("right", "left")):
            h, o = np.sort(hs.get(side, np.empty(0))), np.sort(to.get(side, np.empty(0)))
            ho, oo = np.sort(hs.get(other, np.empty(0))), np.sort(to.get(other, np.empty(0)))
            rej: Counter = Counter()
            out: list[Stride] = []
            d = np.diff(h)
            med = float(np.median(d)) if len(d) else float("nan")
            for i in range(len(h) - 1):
                a, b = h[i], h[i + 1]
                if not (self.min_stride_s <= b - a <= self.max_stride_s):
                    rej["duration outside plausible range"] += 1
                    continue
                if abs(b - a - med) > self.max_rel_dev * med:
                    rej["duration far from the median stride (missed or extra heel strike)"] += 1
                    continue
                if any(g0 < b and g1 > a and g1 - g0 > self.max_gap_s for g0, g1 in gaps):
                    rej["crosses a gap with nobody in view"] += 1
                    continue
                if np.sum((ho > a) & (ho < b)) >= 2:
                    rej["heel strikes of the two feet do not alternate (missed heel strike)"] += 1
                    continue
                tos = o[(o > a) & (o < b)]
                if len(tos) != 1:
                    rej["no toe-off of this foot" if len(tos) == 0 else "more than one toe-off"] += 1
                    continue
                s = Stride(side, float(a), float(tos[0]), float(b))
                if not (self.min_stance_pct <= s.stance_pct <= self.max_stance_pct):
                    rej["stance outside plausible range"] += 1
                    continue
                cto = oo[(oo > a) & (oo < tos[0])]
                chs = ho[(ho > a) & (ho < b)]
                if len(cto) == 1 and len(chs) == 1 and chs[0] < tos[0]:
                    s.contra_toe_off_s, s.contra_heel_strike_s = float(cto[0]), float(chs[0])
                out.append(s)
            self.strides_[side], self.rejected_[side] = out, rej
        return self


def time_normalise(t: np.ndarray, x: np.ndarray, t0: float, t1: float, n_points: int = N_POINTS,
                   min_valid: float = 0.8) -> np.ndarray | None:
    """Resample ``x`` (NaN = missing) over [t0, t1] to ``n_points`` (0-100 % of the cycle);
    None when less than ``min_valid`` of the frames in the cycle are valid."""
    i0, i1 = np.searchsorted(t, t0), np.searchsorted(t, t1, side="right")
    i0, i1 = max(i0 - 1, 0), min(i1 + 1, len(t))
    tt, xx = t[i0:i1], x[i0:i1]
    inner = (tt >= t0) & (tt <= t1)
    ok = np.isfinite(xx)
    if inner.sum() < 3 or (ok & inner).sum() < min_valid * inner.sum() or ok.sum() < 2:
        return None
    return np.interp(np.linspace(t0, t1, n_points), tt[ok], xx[ok])
