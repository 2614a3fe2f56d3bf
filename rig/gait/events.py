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

from ._signals import fill_gaps, level_crossings, masked_poly_derivative, moving_average, stride_period_s


@dataclass
class EventList:
    """Event times of one kind for one foot from one view (or fused).

    ``time_s`` sorted; ``weight`` per event (visibility × confidence); ``source`` view
    names; ``confidence`` in [0, 1] per event; ``contact`` ("heel" / "forefoot") for
    initial contacts, else None.
    """

    time_s: np.ndarray
    weight: np.ndarray
    source: list
    confidence: np.ndarray | None = None
    contact: list | None = None

    @classmethod
    def empty(cls) -> "EventList":
        return cls(np.empty(0), np.empty(0), [], np.empty(0), [])


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
        pk = np.union1d(pk, self._edge_peaks(xx, pk, per, dt, self.min_prominence_frac * (hi - lo)))
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

    @staticmethod
    def _edge_peaks(x, pk, per, dt, prominence):
        """Extrema in the capture's first and last partial stride. A peak's prominence is
        measured against the lower of its two bases, and next to the capture's edge one
        base is cut short (the signal starts part way down the peak), so an event in the
        first or last ~half stride was lost. Here such a local maximum counts when it
        stands out by ``prominence`` on its inner side alone (within one stride) and is
        at least 0.6 stride from every other peak."""
        n = len(x)
        span = max(2, int(per / dt))
        taken, out = [int(p) for p in pk], []
        for lo_i, hi_i, inner in ((1, min(span, n - 1), +1), (max(1, n - span), n - 1, -1)):
            seg = np.arange(lo_i, hi_i)
            loc = seg[(x[seg] >= x[seg - 1]) & (x[seg] > x[seg + 1])]
            for p in loc:
                if taken and min(abs(q - p) for q in taken) < 0.6 * per / dt:
                    continue
                side = x[p:min(n, p + span)] if inner > 0 else x[max(0, p - span):p + 1]
                if x[p] - np.min(side) >= prominence and x[p] == np.max(side):
                    taken.append(int(p))
                    out.append(int(p))
        return np.array(sorted(out), dtype=int)


class BeltVelocityEvents:
    """Initial contact and foot off of one foot as force plates define them, from the
    forward image velocity of its heel and toe landmarks in belt speeds (stance = -1).

    Measured on real feet against a plate (docs/validation.md): a landing foot does not
    join the belt at contact. The heel's image velocity crosses zero 42-48 ms before the
    plate's initial contact (20 N); at contact the heel still moves forward relative to
    the belt, so in the image it moves back at only 0.63-0.69 of the belt speed, reaching
    it ~100 ms later (heel rocker). The forefoot keeps the belt's speed until it rolls over
    the toes, and its image velocity crosses zero close to foot off. So: initial contact =
    the velocity falls through ``-ic_fraction`` (0.6, calibrated on the validation set),
    foot off = the toe's rises through ``-fo_fraction`` (0). Velocity-threshold events in
    the sense of O'Connor CM, Thorpe SK, O'Malley MJ, Vaughan CL (2007), *Automatic
    detection of gait events using kinematic data*, Gait & Posture 25:469-474, and
    Ghoussayni S, Stevens C, Durham S, Ewins D (2004), *Assessment and validation of a
    simple automated method for the detection of gait events and intervals*, Gait &
    Posture 20:266-272, with thresholds in belt speeds so one definition holds at every
    pace. Initial contact is the heel's crossing, or the toe's when it comes more than two
    frames earlier (a forefoot or flat-foot landing, ``contact_`` = "forefoot"): it is
    reported as initial contact, not forced into a heel strike.

    Velocity: cubic Savitzky-Golay derivative, ``smooth_s`` × the period scale (widened up
    to 2× when the measured noise exceeds ``target_noise`` belt speeds), fitted to the frames
    that exist (missing frames left out, their cost in the confidence; none inside a gap
    longer than ``max_gap_s``; centred windows shrunk at the capture's ends). A quadratic derivative 1.5× longer picks the crossing nearest the
    Zeni candidate (noise cannot move it to a jitter); the cubic one's crossing, linearly
    interpolated between frames (sub-frame, never snapped to a frame) and noise-averaged
    within +-``refine_s``, times it. Where the heel's velocity flattens into the rocker the
    cubic crossing is noisy (4-9 ms SD on the walker under 2 px), so with three or more
    events of a kind the time is the steady quadratic crossing plus the median lag between
    the two over the capture (that lag is the filter's, the same at every stride of the
    foot). Confidence ``1 / (1 + (sigma_t /
    frame)^2)``, ``sigma_t`` = velocity noise / velocity slope at the crossing; events below
    ``min_confidence`` or without a crossing near their candidate are dropped and counted
    (``dropped_``), never guessed.

    Attributes (after ``detect``)
    -----------------------------
    ic_s_, fo_s_ : event times. ic_conf_, fo_conf_ : confidences. contact_ : "heel" or
    "forefoot" per initial contact. dropped_ : {"ic": n, "fo": n}.
    """

    def __init__(self, ic_fraction: float = 0.6, fo_fraction: float = 0.0, smooth_s: float = 0.14,
                 max_gap_s: float = 0.1, min_confidence: float = 0.2,
                 ic_search_s=(-0.06, 0.16), fo_search_s=(-0.12, 0.12), polyorder: int = 3, refine_s: float = 0.04,
                 target_noise: float = 0.06, min_events_for_lag: int = 3) -> None:
        self.target_noise = target_noise
        self.min_events_for_lag = min_events_for_lag
        self.polyorder = polyorder
        self.refine_s = refine_s
        self.ic_fraction = ic_fraction
        self.fo_fraction = fo_fraction
        self.smooth_s = smooth_s
        self.max_gap_s = max_gap_s
        self.min_confidence = min_confidence
        self.ic_search_s = ic_search_s
        self.fo_search_s = fo_search_s

    def detect(self, t: np.ndarray, heel_fwd: np.ndarray, toe_fwd: np.ndarray, belt_px_s: float,
               ic_candidates_s: np.ndarray, fo_candidates_s: np.ndarray, scale: float = 1.0) -> "BeltVelocityEvents":
        """``*_fwd``: forward image coordinate (px; stance moves toward -); ``belt_px_s`` > 0
        the belt's image speed; candidates from :class:`CoordinateEventDetector`;
        ``scale`` stretches the search windows with the stride period."""
        dt = float(np.median(np.diff(t)))
        # landmark noise is fixed in pixels, so a slow belt (few px/s) needs a longer
        # window: SG derivative noise falls as window^-1.5, widen up to 2x to reach the
        # target noise (measured where the heel rides the belt)
        sigma = _stance_noise(self._velocity(t, heel_fwd, dt, self.smooth_s * scale, self.polyorder)[0] / belt_px_s)
        window_s = self.smooth_s * scale * float(np.clip((sigma / self.target_noise) ** (2 / 3), 1.0, 2.0))
        def in_belt_speeds(x):  # (fine velocity, coarse velocity, fine noise ratio)
            fine, ratio = self._velocity(t, x, dt, window_s, self.polyorder)
            return fine / belt_px_s, self._velocity(t, x, dt, 1.5 * window_s, 2)[0] / belt_px_s, ratio

        u_heel, u_toe = in_belt_speeds(heel_fwd), in_belt_speeds(toe_fwd)
        lo, hi = (scale * x for x in self.ic_search_s)
        heel_ic = self._crossings(t, u_heel, -self.ic_fraction, -1, ic_candidates_s, lo, hi, dt, scale)
        toe_ic = self._crossings(t, u_toe, -self.ic_fraction, -1, ic_candidates_s, lo, hi, dt, scale)
        # the toe times a landing it clearly leads (forefoot or flat foot first)
        use_toe = np.isfinite(toe_ic[0]) & ~(heel_ic[0] <= toe_ic[0] + 2 * dt)
        ic_t = np.where(use_toe, toe_ic[0], heel_ic[0])
        ic_c = np.where(use_toe, toe_ic[1], heel_ic[1])
        lo, hi = (scale * x for x in self.fo_search_s)
        fo_t, fo_c = self._crossings(t, u_toe, -self.fo_fraction, +1, fo_candidates_s, lo, hi, dt, scale)
        keep_ic = np.isfinite(ic_t) & (ic_c >= self.min_confidence)
        keep_fo = np.isfinite(fo_t) & (fo_c >= self.min_confidence)
        self.dropped_ = {"ic": int((~keep_ic).sum()), "fo": int((~keep_fo).sum())}
        self.ic_s_, self.ic_conf_ = ic_t[keep_ic], ic_c[keep_ic]
        self.contact_ = ["forefoot" if x else "heel" for x in use_toe[keep_ic]]
        self.fo_s_, self.fo_conf_ = fo_t[keep_fo], fo_c[keep_fo]
        return self

    def _velocity(self, t, x, dt, window_s, polyorder):
        """(velocity px/s, noise variance ratio) per frame: a local least-squares polynomial
        over the frames that exist (:func:`masked_poly_derivative`: missing frames left out
        of the fit, never bridged into it; a frame on each side of the centre; centred
        windows shrunk at the capture's ends, never extrapolated), none for a frame inside a
        gap longer than ``max_gap_s`` (there any velocity would be a guess)."""
        n = max(polyorder + 3 - (polyorder % 2), int(round(window_s / dt)) | 1)
        x = np.asarray(x, dtype=np.float64)
        v, ratio = masked_poly_derivative(x, n, polyorder, dt)
        inside_long_gap = ~np.isfinite(fill_gaps(t, x, self.max_gap_s))
        v[inside_long_gap] = np.nan
        return v, ratio

    def _crossings(self, t, uu, level, direction, candidates, lo, hi, dt, scale):
        """(time, confidence) of the crossing of ``level`` in ``direction`` nearest each
        candidate within [c + lo, c + hi]; NaN where there is none. ``uu`` = (fine, coarse)
        velocities: the coarse one (quadratic, longer) picks the crossing, so noise cannot
        put it on a jitter of the fine one; the fine one (cubic: little bias where the
        velocity bends at contact) times it. With at least ``min_events_for_lag`` events the
        time is the coarse crossing plus the median (fine - coarse) lag of all of them."""
        u, coarse, var_ratio = uu
        i, tc = level_crossings(t, coarse, level, direction)
        slope = np.abs(coarse[i + 1] - coarse[i]) / (t[i + 1] - t[i])
        sigma_u = _stance_noise(u)
        times = np.full(len(candidates), np.nan)
        coarse_t = np.full(len(candidates), np.nan)
        conf = np.zeros(len(candidates))
        for k, c in enumerate(candidates):
            m = (tc >= c + lo) & (tc <= c + hi)
            if not m.any():
                continue
            j = np.flatnonzero(m)[np.argmin(np.abs(tc[m] - c))]
            times[k] = self._level_time(t, u, level, direction, tc[j], dt, scale)
            coarse_t[k] = tc[j]
            # fewer frames in the window (missing landmarks) -> noisier velocity there
            sigma_t = sigma_u * np.sqrt(max(var_ratio[i[j]], var_ratio[i[j] + 1])) / max(slope[j], 1e-9)
            conf[k] = 1.0 / (1.0 + (sigma_t / dt) ** 2)
        if np.isfinite(times).sum() >= self.min_events_for_lag:
            # the fine crossing is unbiased but noisy where the velocity flattens into the
            # heel rocker; the coarse one is steady but lags by an amount set by the
            # filter and the foot's velocity shape, the same at every stride of this foot
            # in this capture: coarse time + the capture's median lag keeps the fine
            # one's timing with the coarse one's noise
            times = coarse_t + np.nanmedian(times - coarse_t)
        return times, conf

    def _level_time(self, t, u, level, direction, tc, dt, scale):
        """Noise-averaged sub-frame crossing time of ``u`` near the coarse crossing ``tc``.

        The coarse (longer, quadratic) derivative lags the fine one where the velocity
        bends, by up to ~2 frames at 30 fps, so the window spans both ``tc`` and the fine
        crossing nearest it (within ``refine_s`` + 3 frames), +-``refine_s``. The time
        is the window's start plus the time ``u``, linearly interpolated between frames,
        spends on its pre-crossing side within it: exact for a monotone signal
        (the linear interpolation of the crossing, not the frame it falls in); with noise,
        jittered extra crossings average out instead of one being picked."""
        w = max(self.refine_s * scale, 2 * dt)
        _, tf = level_crossings(t, u, level, direction)
        d = (u - level) if direction < 0 else (level - u)  # > 0: not yet crossed
        lo, hi = tc - w, tc + w
        if len(tf):
            near = np.abs(tf - tc) <= w + 3 * dt
            if near.any():
                f = float(tf[near][np.argmin(np.abs(tf[near] - tc))])
                lo, hi = min(f, tc) - w, max(f, tc) + w
        m = (t >= lo) & (t <= hi) & np.isfinite(u)
        if m.sum() < 3:
            return tc
        tt, dd = t[m], d[m]
        a, b = dd[:-1], dd[1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where((a > 0) & (b > 0), 1.0,
                            np.where((a <= 0) & (b <= 0), 0.0,
                                     np.where(a > 0, a / (a - b), b / (b - a))))
        return float(tt[0] + np.sum(frac * np.diff(tt)))


def _stance_noise(u: np.ndarray) -> float:
    """Velocity noise (belt speeds): robust spread of the frame-to-frame change of ``u``
    where the foot rides the belt (u near -1)."""
    st = np.isfinite(u) & (np.abs(u + 1.0) < 0.3)
    du = np.diff(np.where(st, u, np.nan))
    du = du[np.isfinite(du)]
    if len(du) < 5:
        return 0.1
    return float(1.4826 * np.median(np.abs(du - np.median(du))) / np.sqrt(2.0))


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


def fuse_events(lists: list[EventList], tol_s: float) -> EventList:
    """Merge event lists of one foot from several views.

    Events from different views closer than ``tol_s`` are the same event: their times and
    confidences are averaged with the lists' weights. An event seen by one view only is
    kept. A fused initial contact is "forefoot" when most of its weight says so.
    """
    lists = [e for e in lists if len(e.time_s)]
    if not lists:
        return EventList.empty()
    n = [len(e.time_s) for e in lists]
    t = np.concatenate([e.time_s for e in lists])
    w = np.concatenate([e.weight for e in lists])
    conf = np.concatenate([e.confidence if e.confidence is not None else np.ones(k) for e, k in zip(lists, n)])
    src = sum((list(e.source) if len(e.source) == k else [None] * k for e, k in zip(lists, n)), [])
    con = sum((list(e.contact) if e.contact and len(e.contact) == k else [None] * k for e, k in zip(lists, n)), [])
    o = np.argsort(t)
    t, w, conf = t[o], w[o], conf[o]
    src, con = [src[i] for i in o], [con[i] for i in o]
    out_t, out_w, out_s, out_c, out_k = [], [], [], [], []
    i = 0
    while i < len(t):
        j = i + 1
        while j < len(t) and t[j] - t[i] <= tol_s:
            j += 1
        ww = np.maximum(w[i:j], 1e-9)
        out_t.append(float(np.sum(t[i:j] * ww) / np.sum(ww)))
        out_w.append(float(np.sum(ww)))
        out_c.append(float(np.sum(conf[i:j] * ww) / np.sum(ww)))
        out_s.append("+".join(sorted({s for s in src[i:j] if s})))
        fore = sum(x for x, c in zip(ww, con[i:j]) if c == "forefoot")
        heel = sum(x for x, c in zip(ww, con[i:j]) if c == "heel")
        out_k.append(None if fore + heel == 0 else ("forefoot" if fore > heel else "heel"))
        i = j
    return EventList(np.array(out_t), np.array(out_w), out_s, np.array(out_c), out_k)


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
    dropped_ : dict side -> {"ic": n, "fo": n} events dropped as untrustworthy.
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
        self.stride_period_s_, self.belt_px_per_s_, self.dropped_ = {}, {}, {}
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
            hs_c, to_c = zeni.heel_strike_candidates_s_, zeni.toe_off_candidates_s_
            slope = _stance_slopes(t, lm[:, HEEL[side], :1], hs_c + 0.2 * k, "on", 0.15 * k)[0]
            self.belt_px_per_s_[side] = float(slope)
            det = BeltVelocityEvents().detect(t, heel_f, sgn * lm[:, TOE[side], 0], abs(slope) if slope else np.nan,
                                              hs_c, to_c, scale=k)
            self.dropped_[side] = det.dropped_
            lists = {}
            for name, times, conf, pt, contact in (("hs", det.ic_s_, det.ic_conf_, HEEL[side], det.contact_),
                                                   ("to", det.fo_s_, det.fo_conf_, TOE[side], None)):
                iv = np.clip(np.searchsorted(t, times), 0, len(t) - 1)
                wv = np.nan_to_num(lm[iv, pt, 3], nan=0.3)
                lists[name] = EventList(times, wv * conf, [view] * len(times), conf, contact)
            belt = -self.belt_px_per_s_.get(side, np.nan)  # backward in the walker's frame
            if not (belt * sgn >= self.min_belt_leg_per_s * leg):
                self.reasons_[side] = (f"{view} view: the {side} foot does not move back with a belt in "
                                       "stance (no treadmill walking)")
                continue
            self.heel_strike_[side], self.toe_off_[side] = lists["hs"], lists["to"]
        return self
