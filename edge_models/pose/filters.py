"""The one-euro filter (Casiez et al. 2012) that steadies the tracking crop.

MediaPipe's pose graph always smooths the two auxiliary landmarks that place the next
frame's crop — even with ``smooth_landmarks=False``, which only turns off smoothing of the
*output* landmarks — so that the crop of a still body does not jitter while a quick movement
still moves it. We do the same, with MediaPipe 0.10.14's constants (PoseLandmarkFiltering:
min_cutoff 0.01, beta 10, derivative cutoff 1) and velocities scaled by the body size so the
behaviour does not depend on how large the person is in the image. Output landmarks are
never filtered: the coordinator needs raw per-frame positions for gait events.
"""
from __future__ import annotations

import math

import numpy as np

# MediaPipe's Python solution stamps frames 33 333 µs apart whatever the video's rate, so its
# filters run at 30 Hz per frame; we step per frame the same way to keep the same crop.
FRAME_RATE_HZ = 30.0


def _alpha(cutoff_hz: float, rate_hz: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau * rate_hz)


class OneEuroFilter:
    """Element-wise one-euro filter over arrays of a fixed shape, one sample per frame."""

    def __init__(self, min_cutoff_hz: float = 0.01, beta: float = 10.0,
                 derivative_cutoff_hz: float = 1.0, rate_hz: float = FRAME_RATE_HZ):
        self.min_cutoff_hz = min_cutoff_hz
        self.beta = beta
        self.derivative_cutoff_hz = derivative_cutoff_hz
        self.rate_hz = rate_hz
        self.reset()

    def reset(self) -> None:
        self._last_raw: list[float] | None = None
        self._last_value: list[float] | None = None
        self._last_speed: list[float] | None = None

    def apply(self, values: np.ndarray, value_scale: float = 1.0) -> np.ndarray:
        """Filter one sample; ``value_scale`` turns differences into relative ones
        (1 / object size), so ``beta`` means the same for near and far bodies.
        Element by element on Python floats: the filter runs on every frame on four
        numbers, where numpy's per-call cost was most of its time (same IEEE arithmetic,
        same order, same results)."""
        values = np.asarray(values, dtype=np.float64)
        raw = values.ravel().tolist()
        rate = self.rate_hz
        if self._last_raw is None:
            speed = [0.0] * len(raw)
        else:
            speed = [(v - r) * value_scale * rate for v, r in zip(raw, self._last_raw)]
        if self._last_speed is not None:
            a = _alpha(self.derivative_cutoff_hz, rate)
            speed = [a * s + (1 - a) * ls for s, ls in zip(speed, self._last_speed)]
        if self._last_value is None:
            out = list(raw)
        else:
            out = []
            for v, s, lv in zip(raw, speed, self._last_value):
                a = _alpha(self.min_cutoff_hz + self.beta * abs(s), rate)
                out.append(a * v + (1 - a) * lv)
        self._last_raw, self._last_value, self._last_speed = raw, out, speed
        return np.array(out).reshape(values.shape)
