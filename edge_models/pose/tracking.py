"""Sparse optical flow for the gait points between two landmark-model runs.

Pyramidal Lucas–Kanade (Bouguet 2001, "Pyramidal implementation of the affine Lucas Kanade
feature tracker", Intel/OpenCV) moves each point from one grayscale frame to the next; the
forward–backward check of Kalal, Mikolajczyk & Matas 2010 ("Forward-Backward Error:
Automatic Detection of Tracking Failures", ICPR) tracks the point back again and rejects it
when it does not come home — occlusion (a leg behind the other) and textureless cloth fail
that test instead of drifting silently. A rejected point stays lost until the next anchor.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# shoulders, hips, knees, ankles, heels, toe tips (BlazePose indices): what gait timing
# and joint angles use
GAIT_POINTS: tuple[int, ...] = (11, 12, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32)


WORK_SIDE_PX = 400  # flow runs on the body region shrunk to this: cheaper, and less blur


def luma_of(frame_bgr: np.ndarray) -> np.ndarray:
    """A BGR frame's grayscale at half size, each pixel the mean of four: what a camera node's
    ISP hands over as its lores stream's Y plane (picamera2), computed here for footage
    and tests. An odd last row or column is dropped, as :class:`Region` does."""
    h, w = frame_bgr.shape[:2]
    even = frame_bgr[:h - h % 2, :w - w % 2]
    half = cv2.resize(even, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return half if half.ndim == 2 else cv2.cvtColor(half, cv2.COLOR_BGR2GRAY)


@dataclass(frozen=True)
class Region:
    """An axis-aligned pixel box of the image (the body plus a margin) and the factor by
    which flow's image is shrunk: a 1920-px-tall region is tracked on a 320-px image, where
    the motion blur of a swinging foot is a few pixels and the pyramid is cheap. The
    factor is 1 or even, so the colour crop can be halved first on OpenCV's fast path
    (area averaging by exactly 2) and only a quarter of its pixels converted to grayscale:
    the grayscale region was two thirds of the flow's time, and costs a third less so.
    Better still, a camera's luma plane (:func:`luma_of`, half size) is that halved gray
    image already: with the corners on even pixels, its crop is the same image, read from
    a twelfth of the bytes."""

    x0: int
    y0: int
    x1: int
    y1: int
    factor: int = 1  # image px per work px: 1 or even
    # derived once, not per frame (a tracked frame is ~1.5 ms: Python overhead shows)
    offset: np.ndarray = field(init=False, repr=False, compare=False)
    work_size: tuple[int, int] = field(init=False, repr=False, compare=False)  # (w, h) work px
    # the halved colour crop, reused from frame to frame (0.7 MB: a fresh one each frame
    # is an allocation and page faults on every tracked frame); gray() is not re-entrant
    _half_bgr: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        offset = np.array([self.x0, self.y0], np.float64)
        offset.setflags(write=False)
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "work_size", ((self.x1 - self.x0) // self.factor, (self.y1 - self.y0) // self.factor))

    @classmethod
    def around(cls, xy_px: np.ndarray, margin_frac: float, width: int, height: int,
               work_side_px: int = WORK_SIDE_PX) -> "Region":
        """The points' bounding box grown by ``margin_frac`` of its larger side, clipped."""
        lo, hi = np.nanmin(xy_px, axis=0), np.nanmax(xy_px, axis=0)
        pad = margin_frac * float(max(hi - lo)) + 16.0
        x0, y0 = (max(0, int(v - pad)) for v in lo)
        x1, y1 = int(min(width, hi[0] + pad)), int(min(height, hi[1] + pad))
        side = max(x1 - x0, y1 - y0)
        factor = 1 if side <= work_side_px else 2 * -(-side // (2 * work_side_px))
        if factor > 1:  # even corners: the luma plane's pixels are the image's pairs from 0
            x0, y0 = x0 - x0 % 2, y0 - y0 % 2
        w, h = max(1, (x1 - x0) // factor) * factor, max(1, (y1 - y0) // factor) * factor
        return cls(x0, y0, x0 + w, y0 + h, factor)

    def to_work(self, xy_px: np.ndarray) -> np.ndarray:
        return (xy_px - self.offset + 0.5) / self.factor - 0.5

    def to_image(self, xy_work: np.ndarray) -> np.ndarray:
        return (xy_work + 0.5) * self.factor - 0.5 + self.offset

    def gray(self, frame: np.ndarray, luma: np.ndarray | None = None) -> np.ndarray:
        """This region of a BGR (or already grayscale) frame: grayscale, at the work scale,
        each work pixel the mean of the image pixels it covers (as binning would; sampling
        every n-th pixel would alias fine texture). With the frame's ``luma`` plane the
        same image comes from it (a region shrunk by 2 or more)."""
        w, h = self.work_size
        if luma is not None and self.factor > 1:
            crop = luma[self.y0 // 2:self.y1 // 2, self.x0 // 2:self.x1 // 2]
            return crop if self.factor == 2 else cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
        crop = frame[self.y0:self.y1, self.x0:self.x1]
        if crop.ndim == 3 and self.factor > 1:
            half = (w * self.factor // 2, h * self.factor // 2)
            if self._half_bgr is None:  # (a region's size never changes)
                object.__setattr__(self, "_half_bgr", np.empty((half[1], half[0], 3), np.uint8))
            crop = cv2.resize(crop, half, dst=self._half_bgr, interpolation=cv2.INTER_AREA)
        gray = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        if gray.shape[:2] == (h, w):
            return gray
        return cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)


class LucasKanadeTracker:
    """Points of one grayscale image followed into the next, with a forward–backward check.

    >>> lk = LucasKanadeTracker()
    >>> lk.anchor(gray0, points_xy)          # (n, 2) px in gray0
    >>> xy, ok = lk.step(gray1)              # ok[i] False: point i is lost until re-anchored

    ``window_px`` is the LK window, ``levels`` the pyramid depth (motion of up to about
    window·2^levels px per frame), ``max_fb_error_px`` the forward–backward tolerance.
    """

    def __init__(self, window_px: int = 21, levels: int = 3, max_fb_error_px: float = 1.0,
                 max_iterations: int = 20, epsilon: float = 0.03):
        self.max_fb_error_px = max_fb_error_px
        # flags: the per-point "error" OpenCV reports is the window's minimum eigenvalue,
        # which it has computed anyway, instead of a further pass over every window at
        # full scale to sum its residual; nothing here reads it (same points, same status)
        self._lk = dict(winSize=(window_px, window_px), maxLevel=levels, flags=cv2.OPTFLOW_LK_GET_MIN_EIGENVALS,
                        criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, max_iterations, epsilon))
        self._gray: np.ndarray | None = None
        self._xy: np.ndarray | None = None
        self._ok: np.ndarray | None = None

    def anchor(self, gray: np.ndarray, xy_px: np.ndarray) -> None:
        """Start again from known positions (a landmark-model run) on ``gray``."""
        self._gray = gray
        self._xy = np.asarray(xy_px, np.float32).reshape(-1, 2).copy()
        self._ok = np.isfinite(self._xy).all(axis=1)
        self._xy[~self._ok] = 0.0

    def step(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions on ``gray`` (NaN where lost) and which points are still tracked.

        Each of the two OpenCV calls builds both images' pyramids again (~0.16 of its
        ~0.26 ms on a 220×300 work image): one build a frame would do, but cv2's Python
        binding takes no prebuilt pyramid (OpenCV issue #4777; a strict-xfail test in
        tests/test_node_keyframes.py notices when it does)."""
        if self._gray is None:
            raise RuntimeError("anchor() first")
        live = np.flatnonzero(self._ok)
        if live.size:
            prev = self._xy[live].reshape(-1, 1, 2)
            fwd, st_f, _ = cv2.calcOpticalFlowPyrLK(self._gray, gray, prev, None, **self._lk)
            back, st_b, _ = cv2.calcOpticalFlowPyrLK(gray, self._gray, fwd, None, **self._lk)
            fb_px = np.linalg.norm((back - prev).reshape(-1, 2), axis=1)
            good = (st_f.ravel() == 1) & (st_b.ravel() == 1) & (fb_px <= self.max_fb_error_px)
            h, w = gray.shape[:2]
            moved = fwd.reshape(-1, 2)
            good &= (moved[:, 0] >= 0) & (moved[:, 0] < w) & (moved[:, 1] >= 0) & (moved[:, 1] < h)
            self._xy[live[good]] = moved[good]
            self._ok[live[~good]] = False
        self._gray = gray
        out = self._xy.astype(np.float64)
        out[~self._ok] = np.nan
        return out, self._ok.copy()
