"""Controller clock → host monotonic time, estimated from heartbeats (after Klipper's
clocksync.py).

Each heartbeat gives a sample (controller clock at transmission, host monotonic time at
receipt). The receipt is late by a transmission latency that is never negative and
jitters upwards (USB polling, scheduler), so the samples scatter *above* the true line.
We therefore fit a line over a sliding window, gate out samples far above it (a host
hiccup must not bend the line), refit, and then put the line on the low envelope of the
remaining samples: the minimum-latency samples are the best measure of the offset.
Pure: the caller supplies the times.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


class ClockSyncError(RuntimeError):
    """No sample yet: controller times cannot be stated in host time."""


@dataclass(frozen=True)
class ClockFit:
    clock0: int        # reference clock (window's last sample), keeps the fit precise
    host0: float       # host time at clock0
    s_per_tick: float  # fitted host seconds per controller tick


class ClockSync:
    """Feed ``add(clock, host_s)`` per heartbeat; ask ``to_host_s(clock)`` and ``drift_ppm``."""

    def __init__(self, clock_hz: int, window: int = 240, gate_s: float = 0.002,
                 envelope_quantile: float = 0.1, max_drift_ppm: float = 500.0):
        if clock_hz <= 0:
            raise ValueError(f"clock rate must be > 0 Hz, not {clock_hz}")
        self.clock_hz = clock_hz
        self.window = window
        self.gate_s = gate_s
        self.envelope_quantile = envelope_quantile
        self.max_drift_ppm = max_drift_ppm
        self._samples: deque[tuple[int, float]] = deque(maxlen=window)
        self._fit: ClockFit | None = None

    @property
    def ready(self) -> bool:
        return self._fit is not None

    @property
    def samples(self) -> int:
        return len(self._samples)

    def reset(self) -> None:
        self._samples.clear()
        self._fit = None

    def add(self, clock: int, host_s: float) -> None:
        """One heartbeat. A clock that goes backwards means the controller restarted."""
        if self._samples and clock <= self._samples[-1][0]:
            self.reset()
        self._samples.append((clock, host_s))
        self._fit = self._refit()

    def to_host_s(self, clock: int) -> float:
        """Host monotonic time (s) at which the controller clock read ``clock``."""
        if self._fit is None:
            raise ClockSyncError("no heartbeat yet")
        fit = self._fit
        return fit.host0 + (clock - fit.clock0) * fit.s_per_tick

    def to_clock(self, host_s: float) -> int:
        """The inverse: the controller clock at a host monotonic time."""
        if self._fit is None:
            raise ClockSyncError("no heartbeat yet")
        fit = self._fit
        return fit.clock0 + round((host_s - fit.host0) / fit.s_per_tick)

    @property
    def drift_ppm(self) -> float | None:
        """How fast the controller clock runs against its nominal rate, in ppm (+ = fast)."""
        if self._fit is None or len(self._samples) < 8:
            return None
        return (1.0 / (self._fit.s_per_tick * self.clock_hz) - 1.0) * 1e6

    # -- fitting ----------------------------------------------------------------------------
    def _refit(self) -> ClockFit:
        clock0, _ = self._samples[-1]
        x = np.array([c - clock0 for c, _ in self._samples], dtype=float)
        y = np.array([h for _, h in self._samples])
        keep = np.ones(len(x), dtype=bool)
        slope = 1.0 / self.clock_hz
        if len(x) >= 8:
            slope = _line(x, y, keep)[0]
            keep = self._gate(x, y, slope)
            slope = _line(x, y, keep)[0]
            keep = self._gate(x, y, slope)
            slope = self._plausible(_line(x, y, keep)[0])
        host0 = self._envelope(x[keep], y[keep], slope)
        return ClockFit(clock0, host0, slope)

    def _plausible(self, slope: float) -> float:
        """A fit over a short span can be steeper than any crystal drifts: use nominal then."""
        nominal = 1.0 / self.clock_hz
        return slope if abs(slope / nominal - 1.0) * 1e6 <= self.max_drift_ppm else nominal

    def _gate(self, x: np.ndarray, y: np.ndarray, slope: float) -> np.ndarray:
        """Keep samples within gate_s above the low envelope of the residuals."""
        resid = y - slope * x
        low = np.quantile(resid, self.envelope_quantile)
        keep = resid <= low + self.gate_s
        return keep if keep.sum() >= 4 else np.ones(len(x), dtype=bool)

    def _envelope(self, x: np.ndarray, y: np.ndarray, slope: float) -> float:
        """Intercept at x = 0 through the low (minimum-latency) side of the samples."""
        resid = y - slope * x
        if len(resid) < 8:
            return float(resid.min())
        return float(np.quantile(resid, self.envelope_quantile))


def _line(x: np.ndarray, y: np.ndarray, keep: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept over the kept samples."""
    xs, ys = x[keep], y[keep]
    xm, ym = xs.mean(), ys.mean()
    denom = ((xs - xm) ** 2).sum()
    if denom == 0:
        raise ClockSyncError("samples at one clock value only")
    slope = ((xs - xm) * (ys - ym)).sum() / denom
    return float(slope), float(ym - slope * xm)
