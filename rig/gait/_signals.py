"""Signal helpers shared by the gait algorithms: landmark indices, label-swap repair in
side views, gap-aware smoothing. Pure numpy."""
from __future__ import annotations

import numpy as np

# BlazePose indices (subject's left = odd)
NOSE = 0
SHOULDER = {"left": 11, "right": 12}
HIP = {"left": 23, "right": 24}
KNEE = {"left": 25, "right": 26}
ANKLE = {"left": 27, "right": 28}
HEEL = {"left": 29, "right": 30}
TOE = {"left": 31, "right": 32}
SIDES = ("left", "right")
OTHER = {"left": "right", "right": "left"}

_PAIRS = [(1, 4), (2, 5), (3, 6), (7, 8), (9, 10)] + [(k, k + 1) for k in range(11, 33, 2)]
SWAP_PERMUTATION = np.arange(33)
for _a, _b in _PAIRS:
    SWAP_PERMUTATION[_a], SWAP_PERMUTATION[_b] = _b, _a
LEG_LEFT = np.array([23, 25, 27, 29, 31])
LEG_RIGHT = LEG_LEFT + 1


class LabelSwapRepair:
    """Detect and undo left/right label swaps in a side view.

    Pose models on treadmills swap the subject's left and right labels in side views
    (the top complaint of users of open tools). Each frame is scored on two cues that do
    not depend on the labels: the near leg is seen better (higher visibility) and is
    nearer the camera (smaller BlazePose ``z``). Where both cues are weak (|score| below
    ``ambiguous``), continuity decides: the labelling whose feet are closer to the last
    confidently labelled frame's feet wins.

    Parameters
    ----------
    near_side : the subject's side nearest the camera ("left" for the left view).
    ambiguous : score magnitude below which continuity decides.

    Attributes (after ``fit``)
    --------------------------
    swapped_ : bool (n,) frames found swapped (and repaired). n_swapped_ : their count.
    """

    def __init__(self, near_side: str, ambiguous: float = 0.05) -> None:
        self.near_side = near_side
        self.ambiguous = ambiguous

    def fit(self, lm: np.ndarray) -> "LabelSwapRepair":
        near, far = (LEG_LEFT, LEG_RIGHT) if self.near_side == "left" else (LEG_RIGHT, LEG_LEFT)
        import warnings
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            dvis = np.nanmean(lm[:, near, 3], axis=1) - np.nanmean(lm[:, far, 3], axis=1)
            zn, zf = np.nanmean(lm[:, near, 2], axis=1), np.nanmean(lm[:, far, 2], axis=1)
            scale = np.nanmedian(np.abs(zn - zf)) if np.any(np.isfinite(zn - zf)) else 1.0
            dz = -(zn - zf) / (scale if scale and np.isfinite(scale) else 1.0)
        score = np.nan_to_num(dvis) + 0.05 * np.clip(np.nan_to_num(dz), -2, 2)
        found = ~np.isnan(lm[:, 0, 0])
        sw = score < 0
        weak = found & (np.abs(score) < self.ambiguous)
        if weak.any():
            sw = self._continuity(lm, sw, weak, found)
        self.swapped_ = sw & found
        self.n_swapped_ = int(self.swapped_.sum())
        return self

    @staticmethod
    def _continuity(lm, sw, weak, found):
        sw = sw.copy()
        feet = np.concatenate([HEEL_TOE_LEFT, HEEL_TOE_RIGHT])
        last = None
        for i in range(len(lm)):
            if not found[i]:
                continue
            cur = lm[i, feet, :2]
            if sw[i]:
                cur = cur[np.r_[2:4, 0:2]]
            if weak[i] and last is not None:
                alt = cur[np.r_[2:4, 0:2]]
                if np.nansum((alt - last) ** 2) < np.nansum((cur - last) ** 2):
                    sw[i] = ~sw[i]
                    cur = alt
            last = cur
        return sw

    def transform(self, lm: np.ndarray) -> np.ndarray:
        out = lm.copy()
        out[self.swapped_] = lm[self.swapped_][:, SWAP_PERMUTATION]
        return out


HEEL_TOE_LEFT = np.array([29, 31])
HEEL_TOE_RIGHT = np.array([30, 32])


def level_crossings(t: np.ndarray, u: np.ndarray, level: float, direction: int) -> tuple[np.ndarray, np.ndarray]:
    """(sample index before, time) of each crossing of ``level`` by ``u``: ``direction`` < 0
    downward (a heel slowing to the belt), > 0 upward (a toe leaving it); the time is
    interpolated linearly between the two samples."""
    d = (u - level) if direction < 0 else (level - u)  # > 0: not yet crossed
    i = np.flatnonzero((d[:-1] > 0) & (d[1:] <= 0))
    return i, t[i] + (t[i + 1] - t[i]) * d[i] / (d[i] - d[i + 1])


def fill_gaps(t: np.ndarray, x: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Linear interpolation over NaN runs no longer than ``max_gap_s``; longer stay NaN."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    if ok.all() or ok.sum() < 2:
        return x.copy()
    out = np.interp(t, t[ok], x[ok])
    # distance to the nearest valid sample on each side
    idx = np.arange(len(x))
    prev = np.maximum.accumulate(np.where(ok, idx, -1))
    nxt = np.minimum.accumulate(np.where(ok, idx, len(x))[::-1])[::-1]
    bad = (prev < 0) | (nxt >= len(x))
    # the run's own duration (its frames × the frame step), as the docstring says: the
    # distance between the valid neighbours is one frame longer, so at 30 fps a 3-frame
    # (0.1 s) run was left unbridged under a 0.1 s limit
    step = float(np.median(np.diff(t)))
    gap = np.where(bad, np.inf, t[np.minimum(nxt, len(x) - 1)] - t[np.maximum(prev, 0)] - step)
    out[~ok & (bad | (gap > max_gap_s + 1e-9))] = np.nan
    return out


def moving_average(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving average of odd length ``n`` (NaN-propagating at the edges kept as is)."""
    if n <= 1:
        return x.copy()
    k = np.ones(n) / n
    pad = n // 2
    xp = np.pad(x, pad, mode="edge")
    return np.convolve(xp, k, mode="valid")


def stride_period_s(t: np.ndarray, x: np.ndarray, lo_s: float = 0.6, hi_s: float = 2.5,
                    harmonic_tol: float = 0.85) -> float:
    """Dominant period of a gait signal from its autocorrelation in [lo_s, hi_s]; NaN if none.

    A periodic signal's autocorrelation peaks at every multiple of its period, and the
    peaks at one and two strides are nearly equal (the overlap-normalised estimate is
    unbiased, so nothing favours the shorter lag). On long captures stride variability
    makes the one-stride peak win; on a 10 s capture the estimate's noise decides, and a
    global maximum picks two strides about half the time. The period is therefore the
    *shortest* lag whose local maximum reaches ``harmonic_tol`` of the highest one (the
    first dominant peak, as in Moe-Nilssen & Helbostad 2004, J Biomech 37:121-126).
    """
    ok = np.isfinite(x)
    if ok.sum() < 10 or len(t) < 10:
        return float("nan")
    dt = float(np.median(np.diff(t)))
    xx = np.where(ok, x - np.nanmean(x), 0.0)
    n = len(xx)
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(xx, nfft)
    ac = np.fft.irfft(f * np.conj(f), nfft)[:n]
    w = np.fft.irfft(np.abs(np.fft.rfft(ok.astype(float), nfft)) ** 2, nfft)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        ac = ac / np.maximum(w, 1.0)
    if ac[0] <= 0:
        return float("nan")
    ac = ac / ac[0]
    i0, i1 = int(lo_s / dt), min(int(hi_s / dt), n - 1)
    if i1 <= i0 + 2:
        return float("nan")
    seg = ac[i0:i1]
    # interior local maxima only (a range end is not a peak)
    loc = np.flatnonzero((seg[1:-1] >= seg[:-2]) & (seg[1:-1] > seg[2:])) + 1
    if len(loc) == 0:
        return float("nan")
    top = float(seg[loc].max())
    if top < 0.3:
        return float("nan")
    k = int(loc[seg[loc] >= harmonic_tol * top][0])
    # parabolic refinement
    a, b, c = seg[k - 1], seg[k], seg[k + 1]
    den = a - 2 * b + c
    off = 0.5 * (a - c) / den if den else 0.0
    return float((i0 + k + off) * dt)


def masked_poly_derivative(x: np.ndarray, n: int, polyorder: int, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """First derivative of ``x`` (uniform step ``dt``) by a centred least-squares polynomial
    of degree ``polyorder`` over ``n`` samples (odd), fitted to the samples that exist.

    Where every sample of the window exists this is the Savitzky-Golay derivative. A
    missing sample (NaN: nobody found, or a dropped landmark) is left out of the fit rather
    than bridged by a straight line (a chord flattens the very velocity change an event is
    timed on) or allowed to void the whole window (at 30 fps a single 4-frame gap voided
    ±0.3 s around it). The fit is only trusted where both halves of the window keep a
    sample (the derivative is interpolated between data, never extrapolated), it has more
    samples than coefficients, and the window lies inside the capture; elsewhere NaN. How
    much the missing samples cost is not judged by a coverage threshold but measured:
    ``var_ratio`` is the fit's own noise inflation, which the event confidence uses.

    Returns ``(v, var_ratio)``: ``v`` per sample (NaN where not trusted) and the variance of
    ``v`` under white landmark noise relative to the full-window fit (≥ 1 where samples are
    missing; exact for the least-squares fit: ``(M⁻¹)₁₁`` over its full-window value).
    """
    from scipy.signal import savgol_filter

    x = np.asarray(x, dtype=np.float64)
    n = int(n) | 1
    h = n // 2
    N = len(x)
    out = np.full(N, np.nan)
    ratio = np.full(N, np.inf)
    if N < n:
        return out, ratio
    ok = np.isfinite(x)
    w = ok.astype(np.float64)
    xv = np.where(ok, x, 0.0)
    inner = slice(h, N - h)  # windows inside the capture; off its ends a fit would extrapolate
    c = np.r_[0.0, np.cumsum(w)]
    full = (c[n:] - c[:N - n + 1]) > n - 0.5  # per inner window: every sample exists
    # complete windows: the Savitzky-Golay derivative (the same least-squares fit, fast)
    sg = savgol_filter(xv, n, polyorder, deriv=1, delta=dt, mode="interp")[inner]
    out[inner] = np.where(full, sg, np.nan)
    ratio[inner] = np.where(full, 1.0, np.inf)
    part = np.flatnonzero(~full)
    p = polyorder + 1
    sc = np.arange(-h, h + 1) / max(h, 1)  # scaled abscissa keeps the normal equations well conditioned
    # moments of the window's existing samples = the full window's (constants) minus those
    # of its missing samples, scattered from the (few) missing samples: cheap where frames
    # are missing sparsely; the data moments by convolution (reversed kernel = correlation)
    powers = sc[None, :] ** np.arange(2 * p - 1)[:, None]  # (2p-1, n)
    miss = np.flatnonzero(~ok)
    centre = (miss[:, None] - np.arange(-h, h + 1)[None, :]).ravel() - h  # inner-window index
    offs = np.broadcast_to(np.arange(n), (len(miss), n)).ravel()
    inside = (centre >= 0) & (centre < len(full))
    centre, offs = centre[inside], offs[inside]
    full_mom = powers.sum(axis=1)
    mom = [full_mom[k] - np.bincount(centre, powers[k][offs], len(full))[part] for k in range(2 * p - 1)]
    rhs = [np.convolve(xv, powers[k][::-1], mode="valid")[part] for k in range(p)]
    left = (c[h:N - h] - c[:N - 2 * h])[part]  # samples before each window's centre
    right = (c[2 * h + 1:] - c[h + 1:N - h + 1])[part]  # and after it
    good = (left >= 1) & (right >= 1) & (mom[0] >= p + 1)
    mom = [np.where(good, m, f) for m, f in zip(mom, full_mom)]  # untrusted: any solvable system
    e1 = [np.zeros(len(part)), np.ones(len(part))] + [np.zeros(len(part))] * (p - 2)
    coef, inv_col = _hankel_spd_solve(mom, [rhs, e1])
    full_var = np.linalg.inv(full_mom[np.add.outer(np.arange(p), np.arange(p))])[1, 1]
    scale = 1.0 / (h * dt) if h else 1.0 / dt
    out[h + part] = np.where(good, coef[1] * scale, np.nan)
    ratio[h + part] = np.where(good, inv_col[1] / full_var, np.inf)
    _shrink_at_edges(x, ok, n, polyorder, dt, full_var / (h * dt) ** 2, out, ratio)
    return out, ratio


def _shrink_at_edges(x, ok, n, polyorder, dt, full_var_s2, out, ratio) -> None:
    """Within half a window of the capture's start or end the window shrinks to the largest
    centred one that fits (never one-sided: a one-sided fit is biased where the velocity
    bends, and its noise figure does not show it); its extra noise goes into ``ratio``."""
    N, h = len(x), n // 2
    for i in list(range(min(h, N))) + list(range(max(h, N - h), N)):
        hi = min(i, N - 1 - i)
        if 2 * hi + 1 < polyorder + 2:
            continue
        idx = np.arange(i - hi, i + hi + 1)
        m = ok[idx]
        sc = (idx[m] - i) / hi
        if (sc < 0).sum() < 1 or (sc > 0).sum() < 1 or m.sum() < polyorder + 2:
            continue
        A = sc[:, None] ** np.arange(polyorder + 1)[None, :]
        Minv = np.linalg.inv(A.T @ A)
        out[i] = (Minv @ (A.T @ x[idx[m]]))[1] / (hi * dt)
        ratio[i] = Minv[1, 1] / (hi * dt) ** 2 / full_var_s2


def _hankel_spd_solve(mom: list, rhs: list) -> list:
    """Solve many small least-squares normal equations ``M x = b`` at once, ``M[i][j] =
    mom[i + j]`` (each a (k,) array of per-window moments), one solution per right-hand side
    in ``rhs`` (each a list of p (k,) arrays): a Cholesky factorisation written out over p
    (≤ 4) on whole columns, where numpy's batched solver would loop per window."""
    p = len(rhs[0])
    L = [[None] * p for _ in range(p)]
    for j in range(p):
        d = mom[2 * j] - sum(L[j][q] * L[j][q] for q in range(j))
        L[j][j] = np.sqrt(np.maximum(d, 1e-300))
        for i in range(j + 1, p):
            L[i][j] = (mom[i + j] - sum(L[i][q] * L[j][q] for q in range(j))) / L[j][j]
    out = []
    for b in rhs:
        y = []
        for i in range(p):
            y.append((b[i] - sum(L[i][q] * y[q] for q in range(i))) / L[i][i])
        x = [None] * p
        for i in reversed(range(p)):
            x[i] = (y[i] - sum(L[q][i] * x[q] for q in range(i + 1, p))) / L[i][i]
        out.append(x)
    return out
