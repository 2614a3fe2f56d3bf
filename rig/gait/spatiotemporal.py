"""Spatiotemporal parameters per side and together, with stride-level spread.

- Cadence, stride and step time, stance / swing / double support as % of the cycle
  (Perry & Burnfield 2010, *Gait Analysis*; normal: stance ~60 %, double support ~20 %).
- Step and stride length on a treadmill: belt speed × time (the belt carries the foot
  back at the belt speed while it is on the belt).
- Variability: coefficient of variation (SD / mean · 100) over strides.
- Symmetry index: Robinson RO, Herzog W, Nigg BM (1987), *Use of force platform variables
  to quantify the effects of chiropractic manipulation on gait symmetry*, J Manipulative
  Physiol Ther 10:172-176: SI = (R - L) / (½ (R + L)) · 100.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .cycles import Stride

SIDES = ("left", "right")
SI_MEASURES = ("stance_pct", "swing_pct", "step_time_s", "stride_time_s", "step_length_m", "stride_length_m")


def mean_ci(x, level: float = 0.95) -> dict:
    """Mean, SD, n and the t-based confidence interval of the mean (NaN where undefined)."""
    x = np.asarray([v for v in x if v is not None and np.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return dict(mean=math.nan, sd=math.nan, n=0, ci=[math.nan, math.nan])
    m = float(np.mean(x))
    if n < 2:
        return dict(mean=m, sd=math.nan, n=1, ci=[math.nan, math.nan])
    sd = float(np.std(x, ddof=1))
    h = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return dict(mean=m, sd=sd, n=n, ci=[m - h, m + h])


def symmetry_index_pct(right: float, left: float) -> float:
    """(R - L) / (½ (R + L)) · 100 (Robinson et al. 1987); NaN when undefined."""
    s = 0.5 * (right + left)
    if not np.isfinite(s) or s == 0:
        return math.nan
    return 100.0 * (right - left) / s


def symmetry_index_ci(r: dict, lft: dict, level: float = 0.95) -> list[float]:
    """Confidence interval of the symmetry index from the per-side means and their
    standard errors (delta method), with Student's t on the Welch-Satterthwaite degrees
    of freedom: with two or three strides per side the SDs are barely known and the
    interval must say so (a normal quantile would make it far too narrow)."""
    R, L = r["mean"], lft["mean"]
    if r["n"] < 2 or lft["n"] < 2 or not np.isfinite(R + L) or R + L == 0:
        return [math.nan, math.nan]
    se_r, se_l = r["sd"] / math.sqrt(r["n"]), lft["sd"] / math.sqrt(lft["n"])
    dr, dl = 400.0 * L / (R + L) ** 2, -400.0 * R / (R + L) ** 2
    ur, ul = (dr * se_r) ** 2, (dl * se_l) ** 2
    se = math.sqrt(ur + ul)
    si = symmetry_index_pct(R, L)
    if se == 0:
        return [si, si]
    dof = (ur + ul) ** 2 / (ur ** 2 / (r["n"] - 1) + ul ** 2 / (lft["n"] - 1))
    q = float(stats.t.ppf(0.5 + level / 2, dof))
    return [si - q * se, si + q * se]


def step_times(hs: dict[str, np.ndarray], max_step_s: float) -> dict[str, np.ndarray]:
    """Per side, the steps that end with that side's heel strike: from the other foot's
    heel strike just before it (with no heel strike of the same foot in between)."""
    out = {}
    for side, other in (("left", "right"), ("right", "left")):
        h, o = np.sort(hs.get(side, np.empty(0))), np.sort(hs.get(other, np.empty(0)))
        if len(h) == 0 or len(o) == 0:
            out[side] = np.empty(0)
            continue
        j = np.searchsorted(o, h) - 1
        ok = j >= 0
        prev_o = np.where(ok, o[np.maximum(j, 0)], np.nan)
        k = np.searchsorted(h, h) - 1  # previous same-side HS
        prev_s = np.where(k >= 0, h[np.maximum(k, 0)], -np.inf)
        st = h - prev_o
        good = ok & (prev_o > prev_s) & (st > 0) & (st <= max_step_s)
        out[side] = st[good]
    return out


MIN_STRIDES_FOR_MEAN = 2  # a per-side mean from one stride is that stride, not the patient


class SpatiotemporalParameters:
    """Spatiotemporal parameters from accepted strides and heel strikes.

    Parameters
    ----------
    belt_speed_m_s : treadmill belt speed (walking speed on a treadmill).

    Attributes (after ``compute``)
    ------------------------------
    per_side_ : dict measure -> dict side -> summary (mean, sd, n, ci).
    per_stride_ : dict side -> dict measure -> list of per-stride values.
    cadence_steps_per_min_, double_support_pct_ (summary), symmetry_index_pct_,
    symmetry_index_ci95_pct_, symmetry_index_n_ (measure -> side -> strides or steps behind
    it), cv_pct_, unavailable_ (key -> reason).
    """

    def __init__(self, belt_speed_m_s: float) -> None:
        self.belt_speed_m_s = float(belt_speed_m_s)

    def compute(self, strides: dict[str, list[Stride]], hs: dict[str, np.ndarray]) -> "SpatiotemporalParameters":
        v = self.belt_speed_m_s
        self.unavailable_ = {}
        all_strides = [s.stride_time_s for side in SIDES for s in strides.get(side, [])]
        med = float(np.median(all_strides)) if all_strides else math.nan
        steps = step_times(hs, 0.75 * med if np.isfinite(med) else 1.5)
        per = {}
        for side in SIDES:
            ss = strides.get(side, [])
            st = [s.stride_time_s for s in ss]
            stance = [s.stance_pct for s in ss]
            per[side] = dict(
                stride_time_s=st, stance_pct=stance, swing_pct=[100 - x for x in stance],
                step_time_s=list(steps[side]), stride_length_m=[v * x for x in st],
                step_length_m=[v * x for x in steps[side]],
                double_support_pct=[s.double_support_pct for s in ss if np.isfinite(s.double_support_pct)])
        self.per_stride_ = per
        measures = ("stride_time_s", "step_time_s", "stance_pct", "swing_pct", "stride_length_m",
                    "step_length_m")
        self.per_side_ = {m: {side: mean_ci(per[side][m]) for side in SIDES} for m in measures}
        self.cv_pct_ = {}
        for m in ("stride_time_s", "step_time_s", "stance_pct"):
            self.cv_pct_[m] = {}
            for side in SIDES:
                s = self.per_side_[m][side]
                self.cv_pct_[m][side] = 100 * s["sd"] / s["mean"] if s["n"] >= 2 and s["mean"] else math.nan
        all_steps = np.concatenate([steps["left"], steps["right"]])
        if len(all_steps) >= 2:
            self.cadence_steps_per_min_ = 60.0 / float(np.mean(all_steps))
            self.cadence_ci_ = [60.0 / x for x in mean_ci(all_steps)["ci"][::-1]]
        else:
            self.cadence_steps_per_min_ = math.nan
            self.cadence_ci_ = [math.nan, math.nan]
            self.unavailable_["spatiotemporal.cadence_steps_per_min"] = "fewer than two steps detected"
        self.double_support_pct_ = mean_ci(per["left"]["double_support_pct"] + per["right"]["double_support_pct"])
        if self.double_support_pct_["n"] == 0:
            self.unavailable_["spatiotemporal.double_support_pct"] = "no stride with both feet's events"
        self._need_two(measures)
        self.symmetry_index_pct_, self.symmetry_index_ci95_pct_, self.symmetry_index_n_ = {}, {}, {}
        for m in SI_MEASURES:
            r, lft = self.per_side_[m]["right"], self.per_side_[m]["left"]
            self.symmetry_index_n_[m] = {"left": lft["n"], "right": r["n"]}
            self.symmetry_index_pct_[m] = symmetry_index_pct(r["mean"], lft["mean"])
            self.symmetry_index_ci95_pct_[m] = symmetry_index_ci(r, lft)
            if min(r["n"], lft["n"]) < MIN_STRIDES_FOR_MEAN:
                self.symmetry_index_pct_[m] = math.nan
                self.symmetry_index_ci95_pct_[m] = [math.nan, math.nan]
                self.unavailable_[f"spatiotemporal.symmetry_index.{m}"] = (
                    f"a symmetry index needs at least {MIN_STRIDES_FOR_MEAN} strides (steps) per side; "
                    f"found left {lft['n']}, right {r['n']}")
        for side in SIDES:
            if not strides.get(side):
                self.unavailable_[f"spatiotemporal.stance_pct.{side}"] = f"no accepted {side} stride"
            if len(steps[side]) == 0:
                self.unavailable_[f"spatiotemporal.step_time_s.{side}"] = f"no {side} step (needs a heel strike of each foot)"
        return self

    def _need_two(self, measures) -> None:
        """Per-side means from a single stride (or step) are withheld, with the reason."""
        for m in measures:
            for side in SIDES:
                summ = self.per_side_[m][side]
                if summ["n"] == 1:
                    self.per_side_[m][side] = {**summ, "mean": math.nan}
                    self.unavailable_[f"spatiotemporal.{m}.{side}"] = (
                        f"only one {side} stride (step): a mean needs at least {MIN_STRIDES_FOR_MEAN}")
