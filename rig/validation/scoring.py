"""Detected gait events against reference events: the figures of docs/validation.md.

Each reference event is matched to the nearest detected event of the same kind and side
within ``match_s``; an unmatched reference event is a miss (it counts against "within one
frame"). Stance % is scored on reference strides (contact, foot off, next contact of one
foot) whose three events were all matched; step time on consecutive contacts of opposite
feet.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SIDES = ("left", "right")


@dataclass
class EventScore:
    """Errors (detected - reference, s) pooled over trials; ``missed`` reference events."""

    ic_err_s: list = field(default_factory=list)
    fo_err_s: list = field(default_factory=list)
    missed: int = 0
    extra: int = 0
    stance_err_pts: list = field(default_factory=list)
    step_err_s: list = field(default_factory=list)
    frame_s: float = float("nan")

    @property
    def n_reference(self) -> int:
        return len(self.ic_err_s) + len(self.fo_err_s) + self.missed

    @property
    def within_one_frame_pct(self) -> float:
        errs = np.abs(np.r_[self.ic_err_s, self.fo_err_s])
        n = self.n_reference
        return float(100.0 * np.sum(errs <= self.frame_s + 1e-9) / n) if n else float("nan")

    @staticmethod
    def median_iqr_ms(errs) -> tuple[float, float, float]:
        if not len(errs):
            return (float("nan"),) * 3
        q = np.percentile(np.asarray(errs) * 1000.0, [50, 25, 75])
        return float(q[0]), float(q[1]), float(q[2])

    @property
    def stance_abs_err_pts(self) -> float:
        return float(np.mean(np.abs(self.stance_err_pts))) if self.stance_err_pts else float("nan")

    @property
    def step_abs_err_s(self) -> float:
        return float(np.mean(np.abs(self.step_err_s))) if self.step_err_s else float("nan")

    def merge(self, other: "EventScore") -> "EventScore":
        return EventScore(self.ic_err_s + other.ic_err_s, self.fo_err_s + other.fo_err_s,
                          self.missed + other.missed, self.extra + other.extra,
                          self.stance_err_pts + other.stance_err_pts, self.step_err_s + other.step_err_s,
                          self.frame_s if np.isfinite(self.frame_s) else other.frame_s)


def _match(ref: np.ndarray, det: np.ndarray, match_s: float) -> np.ndarray:
    """Detected time matched to each reference event (NaN if none within ``match_s``)."""
    out = np.full(len(ref), np.nan)
    det = np.sort(np.asarray(det, float))
    det = det[np.isfinite(det)]
    for i, r in enumerate(ref):
        if len(det):
            j = int(np.argmin(np.abs(det - r)))
            if abs(det[j] - r) <= match_s:
                out[i] = det[j]
    return out


def score_events(ref_ic: dict, ref_fo: dict, det_ic: dict, det_fo: dict, fps: float,
                 match_s: float = 0.15, window_s: tuple[float, float] | None = None) -> EventScore:
    """Score one trial. ``ref_*``/``det_*`` map side -> event times (s). ``window_s``: only
    reference events inside it are scored (those a detector could see)."""
    sc = EventScore(frame_s=1.0 / fps)
    matched_ic = {}
    for side in SIDES:
        for kind, ref, det, errs in (("ic", ref_ic, det_ic, sc.ic_err_s), ("fo", ref_fo, det_fo, sc.fo_err_s)):
            r = np.asarray(ref.get(side, []), float)
            if window_s is not None:
                r = r[(r >= window_s[0]) & (r <= window_s[1])]
            m = _match(r, det.get(side, []), match_s)
            errs.extend((m - r)[np.isfinite(m)].tolist())
            sc.missed += int(np.sum(~np.isfinite(m)))
            if kind == "ic":
                matched_ic[side] = (r, m)
        ric, mic = matched_ic[side]
        rfo = np.asarray(ref_fo.get(side, []), float)
        mfo = _match(rfo, det_fo.get(side, []), match_s)
        for k in range(len(ric) - 1):
            a, b = ric[k], ric[k + 1]
            inside = np.flatnonzero((rfo > a) & (rfo < b))
            if len(inside) != 1 or not (np.isfinite(mic[k]) and np.isfinite(mic[k + 1])):
                continue
            f, mf = rfo[inside[0]], mfo[inside[0]]
            if np.isfinite(mf):
                sc.stance_err_pts.append(100.0 * ((mf - mic[k]) / (mic[k + 1] - mic[k]) - (f - a) / (b - a)))
    # step times: consecutive reference contacts of opposite feet
    ev = sorted([(t, s, d) for s in SIDES for t, d in zip(*matched_ic[s])])
    for (t0, s0, d0), (t1, s1, d1) in zip(ev, ev[1:]):
        if s0 != s1 and np.isfinite(d0) and np.isfinite(d1):
            sc.step_err_s.append((d1 - d0) - (t1 - t0))
    return sc
