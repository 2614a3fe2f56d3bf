"""Gait events (heel strike, toe-off) per foot from side-view keypoints.

Two stages, one class each:

- :class:`CoordinateEventDetector` — Zeni JA Jr, Richards JG, Higginson JS (2008), *Two
  simple methods for determining gait events during treadmill and overground walking
  using kinematic data*, Gait & Posture 27:710-714. Heel strike near the frame where the
  heel is farthest forward of the pelvis, toe-off near the frame where the toe is
  farthest behind it (the "coordinate" method, made for treadmills). Extrema are found on
  the forward coordinate given by the view's ``facing``.
- :class:`ContactOnsetRefiner` — the extremum is not the contact (on a treadmill the heel
  is farthest forward some 15-30 ms before it lands). In the spirit of O'Connor CM, Thorpe
  SK, O'Malley MJ, Vaughan CL (2007), *Automatic detection of gait events using kinematic
  data*, Gait & Posture 25:469-474 (foot-velocity events), the event is the instant the
  foot point's velocity joins the belt's: a contact point in stance moves linearly in the
  image at the belt's pixel speed. A hinge model ``c + s (t - t0) ± A max(0, ±(t0 - t))^beta``
  is fitted by least squares around each Zeni candidate (``t0`` on a sub-frame grid,
  ``beta`` from a small set); ``t0`` is the event. Frames with nobody are left out of the
  fit, never interpolated into it.

:func:`fuse_events` merges the per-view event lists of one foot (each side view sees its
near leg best: weights are the landmark visibility and the fit quality).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from ._signals import fill_gaps, moving_average, stride_period_s


@dataclass
class EventList:
    """Event times of one kind for one foot from one view (or fused).

    ``time_s`` sorted; ``weight`` per event (visibility × fit quality); ``source`` view names.
    """

    time_s: np.ndarray
    weight: np.ndarray
    source: list

    @classmethod
    def empty(cls) -> "EventList":
        return cls(np.empty(0), np.empty(0), [])


class CoordinateEventDetector:
    """Zeni et al. 2008 coordinate method: candidate heel strikes and toe-offs of one foot.

    Parameters
    ----------
    smooth_s : moving-average length applied before extremum search.
    max_gap_s : frames with nobody are bridged (for the extremum search only) up to this.
    min_prominence_frac : an extremum must stand out by this fraction of the signal's
        5-95 % range.

    Attributes (after ``detect``)
    -----------------------------
    stride_period_s_ : dominant period (autocorrelation) of the heel signal.
    heel_strike_candidates_s_, toe_off_candidates_s_ : extremum times.
    """

    def __init__(self, smooth_s: float = 0.04, max_gap_s: float = 0.25, min_prominence_frac: float = 0.35) -> None:
        self.smooth_s = smooth_s
        self.max_gap_s = max_gap_s
        self.min_prominence_frac = min_prominence_frac

    def detect(self, t: np.ndarray, heel_fwd: np.ndarray, toe_fwd: np.ndarray, pelvis_fwd: np.ndarray,
               period_s: float | None = None) -> "CoordinateEventDetector":
        """``*_fwd`` are image x multiplied by +1 (facing right) or -1 (facing left)."""
        dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
        n = max(1, int(round(self.smooth_s / dt)) | 1)
        h = fill_gaps(t, heel_fwd - pelvis_fwd, self.max_gap_s)
        o = fill_gaps(t, -(toe_fwd - pelvis_fwd), self.max_gap_s)
        self.stride_period_s_ = float(period_s) if period_s else stride_period_s(t, h)
        self.heel_strike_candidates_s_ = self._extrema(t, moving_average(h, n), dt)
        self.toe_off_candidates_s_ = self._extrema(t, moving_average(o, n), dt)
        return self

    def _extrema(self, t, x, dt):
        per = self.stride_period_s_
        ok = np.isfinite(x)
        if not np.isfinite(per) or ok.sum() < 10:
            return np.empty(0)
        lo, hi = np.nanpercentile(x, [5, 95])
        xx = np.where(ok, x, np.nanmin(x))  # gaps never make a peak
        pk, _ = find_peaks(xx, distance=max(1, int(0.6 * per / dt)),
                           prominence=self.min_prominence_frac * (hi - lo))
        # an extremum needs real data on both sides: the first sample after a gap that
        # could not be bridged (or the capture's start) is not a peak of the foot
        pk = pk[(pk > 0) & (pk < len(x) - 1)]
        pk = pk[ok[pk] & ok[pk - 1] & ok[pk + 1]]
        # parabolic sub-frame refinement where the neighbours exist
        out = t[pk].astype(float)
        inner = (pk > 0) & (pk < len(x) - 1)
        p = pk[inner]
        a, b, c = xx[p - 1], xx[p], xx[p + 1]
        den = a - 2 * b + c
        with np.errstate(invalid="ignore", divide="ignore"):
            off = np.where(den < 0, 0.5 * (a - c) / den, 0.0)
        out[inner] += np.clip(np.nan_to_num(off), -0.5, 0.5) * dt
        return out


class ContactOnsetRefiner:
    """Refine event candidates to the instant a foot point joins (or leaves) the belt.

    In stance a point of the foot in contact (the heel after heel strike, the toe tip
    before toe-off) moves with the belt: linearly in the side image. The refiner fits, in a
    window around each candidate, ``x(t) = c + s (t - t0) + A g(t)`` where
    ``g = max(0, t0 - t)^beta`` before contact (``kind="on"``) or ``max(0, t - t0)^beta``
    after it (``kind="off"``), for ``t0`` on a sub-frame grid and ``beta`` in ``betas``,
    jointly on the point's image x and y (shared ``t0``); ``t0`` minimising the residual
    is the event. This is the foot-velocity idea of O'Connor et al. 2007 made exact for a
    treadmill: the event is where the velocity joins the belt's, not an extremum.

    Parameters
    ----------
    kind : "on" (heel strike) or "off" (toe-off).
    search_s : (lo, hi) range of t0 relative to the candidate.
    window_s : (before, after) fit window relative to the candidate (floored in frames:
        :meth:`window_at`).
    betas : onset shapes tried.
    min_points : fewer valid frames in the window → the event is dropped.
    min_side_points : the event is dropped unless the window holds at least this many
        valid frames on each side of ``t0``. With the belt slope and the onset template
        fixed the hinge bridges a few missing frames, but with the frames on one side of
        the contact missing ``t0`` is unconstrained: it slides to the first frame after
        the gap, and an event reported from it would be a guess.

    Attributes (after ``refine``)
    -----------------------------
    time_s_ : refined times (NaN where the fit could not be made).
    rms_px_ : residual RMS of each fit.
    """

    def __init__(self, kind: str, search_s=(-0.02, 0.08), window_s=(0.04, 0.16),
                 betas=None, grid_per_frame: int | None = None, min_points: int = 5,
                 min_side_points: int = 2) -> None:
        if kind not in ("on", "off"):
            raise ValueError("kind must be 'on' or 'off'")
        self.kind = kind
        self.search_s = search_s
        self.window_s = window_s
        # onset shapes calibrated on the walker over 30-120 fps and 80-140 steps/min
        # (docs/gait-analysis.md); beta = 2.0 for heel strike made them 4-7 ms late
        self.betas = tuple(betas) if betas else ((1.7,) if kind == "on" else (1.85,))
        self.grid_per_frame = grid_per_frame
        self.min_points = min_points
        self.min_side_points = min_side_points

    def refine(self, t: np.ndarray, xy: np.ndarray, candidates_s: np.ndarray,
               slope: np.ndarray | None = None, amp: np.ndarray | None = None) -> "ContactOnsetRefiner":
        """``xy``: (n, k) image coordinates (NaN where missing), fitted jointly.

        ``slope`` (k,): the belt's known image velocity per component (px/s); when given,
        the linear term is fixed to it (one parameter fewer: steadier under noise). Without
        it the slope is fitted and ``slope_`` reports the median over the events.
        ``amp`` (k,): the onset amplitude ``A`` fixed as well (a template learned from the
        median of a previous pass, ``amp_``): only the offset ``c`` and ``t0`` remain free."""
        n_c = len(candidates_s)
        self.time_s_ = np.full(n_c, np.nan)
        self.rms_px_ = np.full(n_c, np.nan)
        if n_c == 0 or len(t) < 3:
            return self
        dt = float(np.median(np.diff(t)))
        before, after = self.window_at(dt)
        nw = int(np.ceil((before + after) / dt)) + 2
        # window sample indices per candidate: (n_c, nw)
        start = np.searchsorted(t, candidates_s - before)
        idx = start[:, None] + np.arange(nw)[None, :]
        inside = idx < len(t)
        idx = np.minimum(idx, len(t) - 1)
        tw = t[idx]
        inside &= tw <= (candidates_s + after)[:, None]
        xyw = xy[idx]  # (n_c, nw, k)
        valid = inside[:, :, None] & np.isfinite(xyw)
        xyw = np.where(valid, xyw, 0.0)
        w = valid.astype(float)
        gpf = self.grid_per_frame or max(2, int(np.ceil(dt / 0.0015)))
        step = dt / gpf
        offs = np.arange(self.search_s[0], self.search_s[1] + 1e-12, step)
        best = np.full(n_c, np.inf)
        best_t = np.full(n_c, np.nan)
        for beta in self.betas:
            rss_all = np.empty((n_c, len(offs)))
            for j, o in enumerate(offs):
                t0 = candidates_s + o
                tau = tw - t0[:, None]  # (n_c, nw)
                g = np.maximum(-tau if self.kind == "on" else tau, 0.0) ** beta
                rss_all[:, j] = _rss_hinge(tau, g, xyw, w, slope, amp)[0]
            j = np.argmin(rss_all, axis=1)
            r = rss_all[np.arange(n_c), j]
            # parabolic refinement of the grid minimum
            jj = np.clip(j, 1, len(offs) - 2)
            a, b, c = rss_all[np.arange(n_c), jj - 1], rss_all[np.arange(n_c), jj], rss_all[np.arange(n_c), jj + 1]
            den = a - 2 * b + c
            with np.errstate(invalid="ignore", divide="ignore"):
                d = np.where((den > 0) & (j == jj), 0.5 * (a - c) / den, 0.0)
            tt = candidates_s + offs[j] + np.clip(np.nan_to_num(d), -0.5, 0.5) * step
            better = r < best
            best = np.where(better, r, best)
            best_t = np.where(better, tt, best_t)
        npts = w.sum(axis=(1, 2))
        okc = (npts >= self.min_points * xy.shape[1]) & np.isfinite(best)
        # the hinge needs valid frames on both sides of t0
        seen = valid.all(axis=2)
        n_before = np.sum(seen & (tw < best_t[:, None]), axis=1)
        n_after = np.sum(seen & (tw > best_t[:, None]), axis=1)
        okc &= (n_before >= self.min_side_points) & (n_after >= self.min_side_points)
        self.time_s_ = np.where(okc, best_t, np.nan)
        if slope is None:
            self.slope_ = self._slopes(t, xy, self.time_s_)
        elif amp is None and okc.any():
            tau = tw - np.where(okc, best_t, candidates_s)[:, None]
            g = np.maximum(-tau if self.kind == "on" else tau, 0.0) ** self.betas[0]
            coef = _rss_hinge(tau, g, xyw, w, slope)[1]
            self.amp_ = np.nanmedian(np.where(okc[:, None], coef[:, :, -1], np.nan), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.rms_px_ = np.where(okc, np.sqrt(best / np.maximum(npts - 4 * xy.shape[1], 1)), np.nan)
        return self

    def window_at(self, dt: float) -> tuple[float, float]:
        """The fit window (before, after the candidate) in seconds at frame interval ``dt``.

        ``window_s`` is physical (it follows the onset's duration, scaled with the stride
        period); at a low frame rate and a fast pace it can hold fewer frames than the fit
        is required to have (at 30 fps and 140 steps/min ``(0.031, 0.125)`` s is 4.7 frame
        intervals, so about a third of all heel strikes got only 4 valid frames and were
        dropped by ``min_points`` in every view alike). So the window has a floor in
        frames: ``min_side_points`` frame intervals on each side of the candidate, and
        ``min_points + 1`` in all (one spare for a missing frame), the extra going to the
        stance side (after a heel strike, before a toe-off), where the hinge model is exact
        (the contact point moves with the belt) and a longer window adds no shape bias.
        At 60 fps and above the physical window is the larger except at the fastest
        paces."""
        before, after = self.window_s
        side = self.min_side_points * dt
        before, after = max(before, side), max(after, side)
        short = (self.min_points + 1) * dt - (before + after)
        if short > 0:
            if self.kind == "on":
                after += short
            else:
                before += short
        return before, after

    def _slopes(self, t, xy, events_s):
        before, after = self.window_at(float(np.median(np.diff(t))))
        return _stance_slopes(t, xy, events_s, self.kind, after if self.kind == "on" else before)


def _stance_slopes(t, xy, events_s, kind, span_s):
    """Median image velocity (px/s) of the contact point over the stance part next to each
    event: after heel strikes (``on``) or before toe-offs (``off``); least-squares slope
    per event, median over events."""
    ev = events_s[np.isfinite(events_s)]
    out = []
    for k in range(xy.shape[1]):
        sl = []
        lo = np.searchsorted(t, ev + 0.01 if kind == "on" else ev - span_s)
        hi = np.searchsorted(t, ev + span_s if kind == "on" else ev - 0.01, side="right")
        for a, b in zip(lo, hi):
            tt, yy = t[a:b], xy[a:b, k]
            m = np.isfinite(yy)
            if m.sum() >= 4:
                tt, yy = tt[m], yy[m]
                tc = tt - tt.mean()
                sl.append(float(np.dot(tc, yy - yy.mean()) / np.dot(tc, tc)))
        out.append(float(np.median(sl)) if sl else float("nan"))
    return np.array(out)


def _rss_hinge(tau, g, y, w, slope=None, amp=None):
    """Weighted least squares of y (n_c, nw, k) on [1, tau, g] (or on [1, g] after
    removing a known slope) per candidate and per component; returns the summed residual
    sum of squares (n_c,)."""
    rss = np.zeros(len(tau))
    coefs = np.zeros((len(tau), y.shape[2], 3))
    for k in range(y.shape[2]):
        wk = w[:, :, k]
        yk = y[:, :, k]
        if amp is not None:
            r = yk - slope[k] * tau - amp[k] * g
            sw = np.maximum(wk.sum(axis=1), 1e-12)
            c = np.sum(wk * r, axis=1) / sw
            rss += np.sum(wk * (r - c[:, None]) ** 2, axis=1)
            continue
        if slope is not None:
            yk = yk - slope[k] * tau
            cols = (np.ones_like(tau), g)
        else:
            cols = (np.ones_like(tau), tau, g)
        m = len(cols)
        M = np.empty((len(tau), m, m))
        v = np.empty((len(tau), m))
        for a in range(m):
            for b in range(a, m):
                M[:, a, b] = M[:, b, a] = np.sum(wk * cols[a] * cols[b], axis=1)
            v[:, a] = np.sum(wk * cols[a] * yk, axis=1)
        M += np.eye(m)[None] * 1e-9 * (1 + np.abs(M).max(axis=(1, 2)))[:, None, None]
        coef = np.linalg.solve(M, v[:, :, None])[:, :, 0]
        fit = sum(coef[:, a:a + 1] * cols[a] for a in range(m))
        rss += np.sum(wk * (yk - fit) ** 2, axis=1)
        coefs[:, k, 3 - m:] = coef
    return rss, coefs


def fuse_events(lists: list[EventList], tol_s: float) -> EventList:
    """Merge event lists of one foot from several views.

    Events from different views closer than ``tol_s`` are the same event: their times are
    averaged with the lists' weights. An event seen by one view only is kept.
    """
    lists = [e for e in lists if len(e.time_s)]
    if not lists:
        return EventList.empty()
    t = np.concatenate([e.time_s for e in lists])
    w = np.concatenate([e.weight for e in lists])
    src = sum((list(e.source) if len(e.source) == len(e.time_s) else [None] * len(e.time_s) for e in lists), [])
    o = np.argsort(t)
    t, w = t[o], w[o]
    src = [src[i] for i in o]
    out_t, out_w, out_s = [], [], []
    i = 0
    while i < len(t):
        j = i + 1
        while j < len(t) and t[j] - t[i] <= tol_s:
            j += 1
        ww = np.maximum(w[i:j], 1e-9)
        out_t.append(float(np.sum(t[i:j] * ww) / np.sum(ww)))
        out_w.append(float(np.sum(ww)))
        out_s.append("+".join(sorted({s for s in src[i:j] if s})))
        i = j
    return EventList(np.array(out_t), np.array(out_w), out_s)


# Stride period the fit windows were tuned at (110 steps/min); windows scale with the
# measured period within [0.7, 1.4] of it.
_REF_PERIOD_S = 1.09


class SideViewEventDetector:
    """Heel strikes and toe-offs of both feet from one side view (Zeni + contact onset).

    Parameters
    ----------
    facing : the header's ``facing`` ("right": the walker's forward is image +x).
    min_step_frac : a foot's heel-minus-pelvis excursion must reach this fraction of the
        leg length in the image, and the stance feet must move backward at least
        ``min_belt_leg_per_s`` leg lengths per second; otherwise nobody walks on a moving
        belt and no event is reported (e.g. a person standing or stepping on a platform).

    Attributes (after ``detect``)
    -----------------------------
    heel_strike_ / toe_off_ : dict side -> :class:`EventList`.
    stride_period_s_ : dict side -> period. belt_px_per_s_ : dict side -> stance speed.
    reasons_ : dict side -> why no events were found (absent when found).
    """

    def __init__(self, facing: str, min_step_frac: float = 0.15, min_belt_leg_per_s: float = 0.2) -> None:
        self.facing = facing
        self.min_step_frac = min_step_frac
        self.min_belt_leg_per_s = min_belt_leg_per_s

    def detect(self, view: str, t: np.ndarray, lm: np.ndarray) -> "SideViewEventDetector":
        from ._signals import ANKLE, HEEL, HIP, SIDES, TOE
        sgn = 1.0 if self.facing == "right" else -1.0
        pelvis = sgn * 0.5 * (lm[:, 23, 0] + lm[:, 24, 0])
        self.heel_strike_, self.toe_off_, self.reasons_ = {}, {}, {}
        self.stride_period_s_, self.belt_px_per_s_ = {}, {}
        for side in SIDES:
            self.heel_strike_[side] = EventList.empty()
            self.toe_off_[side] = EventList.empty()
            leg = np.nanmedian(np.hypot(lm[:, HIP[side], 0] - lm[:, ANKLE[side], 0],
                                        lm[:, HIP[side], 1] - lm[:, ANKLE[side], 1])) if np.isfinite(lm[:, HIP[side], 0]).any() else np.nan
            if not np.isfinite(leg) or leg <= 0:
                self.reasons_[side] = f"{view} view: nobody found"
                continue
            heel_f = sgn * lm[:, HEEL[side], 0]
            rng = np.nanpercentile(heel_f - pelvis, [5, 95]) if np.isfinite(heel_f - pelvis).sum() > 10 else [0, 0]
            if rng[1] - rng[0] < self.min_step_frac * leg:
                self.reasons_[side] = f"{view} view: the {side} foot does not move like walking"
                continue
            zeni = CoordinateEventDetector().detect(t, heel_f, sgn * lm[:, TOE[side], 0], pelvis)
            per = zeni.stride_period_s_
            self.stride_period_s_[side] = per
            if not np.isfinite(per) or len(zeni.heel_strike_candidates_s_) < 2:
                self.reasons_[side] = f"{view} view: no periodic stepping of the {side} foot"
                continue
            k = float(np.clip(per / _REF_PERIOD_S, 0.7, 1.4))
            on = dict(kind="on", search_s=(-0.02 * k, 0.08 * k), window_s=(0.04 * k, 0.16 * k))
            off = dict(kind="off", search_s=(-0.08 * k, 0.02 * k), window_s=(0.16 * k, 0.09 * k))
            lists = {}
            for name, kw, pt, cand in (("hs", on, HEEL[side], zeni.heel_strike_candidates_s_),
                                       ("to", off, TOE[side], zeni.toe_off_candidates_s_)):
                xy = lm[:, pt, :2]
                first = ContactOnsetRefiner(**kw).refine(t, xy, cand)
                slope = first.slope_
                if name == "hs":
                    self.belt_px_per_s_[side] = float(slope[0])
                r = first
                if np.all(np.isfinite(slope)):
                    r = ContactOnsetRefiner(**kw).refine(t, xy, cand, slope=slope)
                    if np.all(np.isfinite(getattr(r, "amp_", [np.nan]))):
                        r = ContactOnsetRefiner(**kw).refine(t, xy, cand, slope=slope, amp=r.amp_)
                ok = np.isfinite(r.time_s_)
                vis = lm[:, pt, 3]
                iv = np.clip(np.searchsorted(t, r.time_s_[ok]), 0, len(t) - 1)
                wv = np.nan_to_num(vis[iv], nan=0.3)
                weight = wv / np.maximum(r.rms_px_[ok], 0.5) ** 2
                lists[name] = EventList(r.time_s_[ok], weight, [view] * int(ok.sum()))
            belt = -self.belt_px_per_s_.get(side, np.nan)  # backward in the walker's frame
            if not (belt * sgn >= self.min_belt_leg_per_s * leg):
                self.reasons_[side] = (f"{view} view: the {side} foot does not move back with a belt in "
                                       "stance (no treadmill walking)")
                continue
            self.heel_strike_[side], self.toe_off_[side] = lists["hs"], lists["to"]
        return self
