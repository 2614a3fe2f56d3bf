"""Published kinematic gait-event detectors, run on the same side-view keypoints as ours.

Each works on one foot in one side view (the view nearest that foot), from the image
coordinates of the heel, toe and hips; pixels become metres through the belt's image speed
(stance feet ride the belt at its known speed). Short re-implementations for the
benchmark (the papers' rules, the papers' thresholds where they have one):

- Zeni JA, Richards JG, Higginson JS (2008), Gait & Posture 27:710-714: heel strike at
  the heel's forward maximum relative to the pelvis, toe-off at the toe's backward minimum.
- O'Connor CM, Thorpe SK, O'Malley MJ, Vaughan CL (2007), Gait & Posture 25:469-474: foot
  centre (heel-toe midpoint) vertical velocity; heel strike at its minimum before the
  foot settles, toe-off at its maximum after lift.
- Hreljac A, Marshall RN (2000), J Biomech 33:783-786: heel strike at the heel's peak
  vertical acceleration, toe-off at the toe's peak horizontal acceleration.
- Ghoussayni S et al. (2004), Gait & Posture 20:266-272: sagittal speed thresholds
  (50 mm/s) of heel (contact) and toe (off); on a treadmill the speed is taken relative to
  the belt.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks, savgol_filter

HEEL = {"left": 29, "right": 30}
TOE = {"left": 31, "right": 32}


def _deriv(t, x, order):
    dt = float(np.median(np.diff(t)))
    n = max(5, int(round(0.05 / dt)) | 1)
    return savgol_filter(x, n, 3, deriv=order, delta=dt, mode="interp")


def metres_per_px(track, side, belt_m_s):
    """The image scale at the foot: a stance heel rides the belt at its known speed."""
    sgn = 1.0 if track.header.facing == "right" else -1.0
    vh = _deriv(track.t_s, sgn * track.lm[:, HEEL[side], 0], 1)
    stance = vh < np.percentile(vh, 30)
    return belt_m_s / -np.median(vh[stance])


def _side_signals(track, side, belt_m_s):
    """(t, heel fwd, heel up, toe fwd, toe up, pelvis fwd) in metres for one foot."""
    lm, t = track.lm, track.t_s
    sgn = 1.0 if track.header.facing == "right" else -1.0
    pel = sgn * 0.5 * (lm[:, 23, 0] + lm[:, 24, 0])
    hf, tf = sgn * lm[:, HEEL[side], 0], sgn * lm[:, TOE[side], 0]
    m = metres_per_px(track, side, belt_m_s)
    return (t, hf * m, -lm[:, HEEL[side], 1] * m, tf * m, -lm[:, TOE[side], 1] * m, pel * m)


def _peaks(x, t, sign=1.0, min_sep_s=0.6):
    dt = float(np.median(np.diff(t)))
    pk, _ = find_peaks(sign * x, distance=max(1, int(min_sep_s / dt)), prominence=0.3 * np.ptp(x))
    return t[pk]


class Zeni:
    name = "Zeni 2008"

    def events(self, t, hf, hu, tf, tu, pel, belt):
        return _peaks(hf - pel, t), _peaks(tf - pel, t, -1.0)


class OConnor:
    name = "O'Connor 2007"

    def events(self, t, hf, hu, tf, tu, pel, belt):
        vz = _deriv(t, 0.5 * (hu + tu), 1)
        return _peaks(vz, t, -1.0), _peaks(vz, t, 1.0)


class Hreljac:
    name = "Hreljac 2000"

    def events(self, t, hf, hu, tf, tu, pel, belt):
        return _peaks(_deriv(t, hu, 2), t), _peaks(_deriv(t, tf, 2), t)


class Ghoussayni:
    name = "Ghoussayni 2004"
    threshold_m_s = 0.05

    def events(self, t, hf, hu, tf, tu, pel, belt):
        def rel_speed(f, u):
            return np.hypot(_deriv(t, f, 1) + belt, _deriv(t, u, 1))
        sh, st = rel_speed(hf, hu), rel_speed(tf, tu)
        on = np.flatnonzero((sh[:-1] >= self.threshold_m_s) & (sh[1:] < self.threshold_m_s)) + 1
        off = np.flatnonzero((st[:-1] < self.threshold_m_s) & (st[1:] >= self.threshold_m_s)) + 1
        return _thin(t[on]), _thin(t[off])


def _thin(times, min_sep_s=0.4):
    """First of every run of threshold crossings closer than ``min_sep_s`` (noise chatter)."""
    out = []
    for x in times:
        if not out or x - out[-1] > min_sep_s:
            out.append(x)
    return np.array(out)


PEERS = (Zeni(), OConnor(), Hreljac(), Ghoussayni())


def detect(peer, tracks, belt_m_s):
    """({side: IC times}, {side: FO times}) from the side view nearest each foot."""
    ic, fo = {}, {}
    for side in ("left", "right"):
        sig = _side_signals(tracks[side], side, belt_m_s)
        a, b = peer.events(*sig, belt_m_s)
        ic[side], fo[side] = np.asarray(a, float), np.asarray(b, float)
    return ic, fo
