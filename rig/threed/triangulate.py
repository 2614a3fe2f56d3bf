"""Triangulation of the four views' landmarks, frame by frame, with outlier rejection.

Method: weighted linear least squares of the point nearest to the views' rays (the
"midpoint" form of linear triangulation, Hartley & Zisserman 2004 §12.2; Hartley & Sturm
1997), on undistorted normalised coordinates, solved in closed form: each view adds
``w·(I − d̂d̂ᵀ)`` to a 3×3 system, whose solution a vectorised Cramer rule gives for a whole
session at once. Everything is element-wise over chunks of 16k points that stay in cache
(small matrix products are slower than that in numpy).

Weights: BlazePose visibility × the camera's view of that side of the body × focal² /
depth² (a ray distance is depth × normalised error, so this turns it into image pixels
at the working volume's centre). A view whose reprojection error exceeds ``gate_px`` is
dropped for that landmark when at least two others remain (the worst first, repeated);
two views that disagree by more than the gate leave the landmark missing (counted),
since neither can be preferred.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import CameraModel

# BlazePose landmark indices of the subject's left and right sides (odd = left, 11…31)
LEFT = np.array([1, 2, 3, 7, 9] + list(range(11, 33, 2)))
RIGHT = np.array([4, 5, 6, 8, 10] + list(range(12, 33, 2)))
VOLUME_CENTRE_M = np.array([0.0, 0.0, 0.9])  # middle of the walker on the belt
_CHUNK_POINTS = 1 << 14


@dataclass
class Triangulation:
    """Per frame and landmark: ``points_m`` (n, L, 3) world metres (NaN where missing),
    ``n_views`` (n, L) views used, ``error_px`` (n, L) RMS reprojection error of those."""

    points_m: np.ndarray
    n_views: np.ndarray
    error_px: np.ndarray
    views_dropped: int  # outlier views removed by the gate
    points_rejected: int  # landmarks left missing because two views disagreed


def side_quality(cameras: dict[str, CameraModel], n_landmarks: int = 33, far_side: float = 0.5) -> dict[str, np.ndarray]:
    """Per camera and landmark: 1 for the side of the body facing the camera, down to
    ``far_side`` for the hidden side (cameras straight ahead or behind see both sides
    alike). The walker faces +x with its left on +y, so a camera's lateral position decides."""
    out = {}
    for name, cam in cameras.items():
        d = cam.position_m - VOLUME_CENTRE_M
        lateral = float(d[1] / max(np.hypot(d[0], d[1]), 1e-9))  # +1 on the walker's left
        q = np.ones(n_landmarks)
        q[LEFT[LEFT < n_landmarks]] = 1.0 - (1.0 - far_side) * max(0.0, -lateral)
        q[RIGHT[RIGHT < n_landmarks]] = 1.0 - (1.0 - far_side) * max(0.0, lateral)
        out[name] = q
    return out


def _solve(s: np.ndarray) -> np.ndarray:
    """(9, m) symmetric normal equations (M00 M01 M02 M11 M12 M22 b0 b1 b2) -> (3, m)
    solutions (NaN where singular: fewer than two rays)."""
    m00, m01, m02, m11, m12, m22, b0, b1, b2 = s
    c00 = m11 * m22 - m12 * m12
    c01 = m02 * m12 - m01 * m22
    c02 = m01 * m12 - m02 * m11
    c11 = m00 * m22 - m02 * m02
    c12 = m01 * m02 - m00 * m12
    c22 = m00 * m11 - m01 * m01
    det = m00 * c00 + m01 * c01 + m02 * c02
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(np.abs(det) > 1e-9 * np.abs(m00 * m11 * m22), 1.0 / det, np.nan)
    return np.stack([(c00 * b0 + c01 * b1 + c02 * b2) * inv,
                     (c01 * b0 + c11 * b1 + c12 * b2) * inv,
                     (c02 * b0 + c12 * b1 + c22 * b2) * inv])


class Triangulator:
    """Weighted DLT with a reprojection-error gate (see module docstring)."""

    def __init__(self, cameras: dict[str, CameraModel], gate_px: float = 15.0, min_visibility: float = 0.3,
                 far_side_weight: float = 0.5) -> None:
        if len(cameras) < 2:
            raise ValueError("triangulation needs at least two calibrated cameras")
        self.cameras = cameras
        self.gate_px = gate_px
        self.min_visibility = min_visibility
        self.dtype = np.float32
        self.quality = side_quality(cameras, far_side=far_side_weight)
        self._scale = {k: c.fx * c.fy / float(c.to_camera(VOLUME_CENTRE_M)[2]) ** 2 for k, c in cameras.items()}

    def triangulate(self, views: dict[str, np.ndarray]) -> Triangulation:
        """``views``: camera name -> (n, L, 4) landmarks [x_px, y_px, z, visibility] of the
        same trigger indices (NaN rows where the view found nobody)."""
        names = [k for k in views if k in self.cameras]
        if len(names) < 2:
            raise ValueError(f"need two calibrated views, got {sorted(views)} for cameras {sorted(self.cameras)}")
        n, n_lm = views[names[0]].shape[:2]
        if any(views[k].shape[:2] != (n, n_lm) for k in names):
            raise ValueError("views differ in frame count or landmark count; align them by trigger index first")
        cams = [self.cameras[k] for k in names]
        # whole views at once: cv2.remap is fastest on large calls (float32, 8 bytes/point)
        undist = [cam.undistort(views[k][..., 0], views[k][..., 1]) for k, cam in zip(names, cams)]
        weight = [np.asarray(self.quality[k][:n_lm] * self._scale[k], self.dtype) for k in names]
        pts = np.empty((n, n_lm, 3))
        used = np.empty((n, n_lm), np.int8)
        err = np.empty((n, n_lm), np.float32)
        dropped = rejected = 0
        step = max(1, _CHUNK_POINTS // n_lm)
        for a in range(0, n, step):
            sl = slice(a, a + step)
            x, y, w = self._observations([(xy[0][sl], xy[1][sl], views[k][sl, :, 3]) for k, xy in zip(names, undist)],
                                         weight)
            p, u, e, d, r = self._chunk(x, y, w, cams)
            pts[sl] = p.T.reshape(-1, n_lm, 3) + VOLUME_CENTRE_M
            used[sl] = u.reshape(-1, n_lm)
            err[sl] = e.reshape(-1, n_lm)
            dropped += d
            rejected += r
        return Triangulation(pts, used, err, dropped, rejected)

    def _observations(self, obs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], weight: list[np.ndarray]):
        """Per view (x_n, y_n, visibility) -> (V, m) x, y and weight (0 = not used)."""
        m = obs[0][0].size
        x = np.empty((len(obs), m), self.dtype)
        y = np.empty((len(obs), m), self.dtype)
        w = np.empty((len(obs), m), self.dtype)
        for v, (xn, yn, vis) in enumerate(obs):
            x[v], y[v] = xn.reshape(-1), yn.reshape(-1)
            w[v] = (np.where(vis >= self.min_visibility, vis, 0) * weight[v]).reshape(-1)
        lost = np.isnan(x) | np.isnan(y) | np.isnan(w)
        x[lost] = 0
        y[lost] = 0
        w[lost] = 0
        return x, y, w

    def _chunk(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, cams: list[CameraModel]) -> tuple:
        """(V, m) normalised coordinates and weights -> points (3, m) relative to the
        volume's centre, views used, RMS px, views dropped, points rejected. ``w`` is
        modified: dropped views get weight 0."""
        pts = _solve(_normal_equations(x, y, w, cams))
        err = _reprojection_px(x, y, pts, cams)
        active = w > 0
        err_active = np.where(active, err, 0)
        idx = np.nonzero(err_active.max(axis=0) > self.gate_px)[0]  # few: only these loop
        dropped = 0
        while len(idx):
            n_act = active[:, idx].sum(axis=0)
            idx = idx[n_act >= 3]
            if not len(idx):
                break
            worst = np.argmax(err_active[:, idx], axis=0)
            w[worst, idx] = 0
            active[worst, idx] = False
            dropped += len(idx)
            pts[:, idx] = _solve(_normal_equations(x[:, idx], y[:, idx], w[:, idx], cams))
            err[:, idx] = _reprojection_px(x[:, idx], y[:, idx], pts[:, idx], cams)
            err_active[:, idx] = np.where(active[:, idx], err[:, idx], 0)
            idx = idx[err_active[:, idx].max(axis=0) > self.gate_px]
        n_act = active.sum(axis=0)
        bad_pair = (n_act == 2) & (err_active.max(axis=0) > self.gate_px)
        missing = (n_act < 2) | bad_pair
        pts[:, missing] = np.nan
        rms = np.sqrt((err_active * err_active).sum(0) / np.maximum(n_act, 1))
        rms[missing] = np.nan
        return pts, np.where(missing, 0, n_act), rms, dropped, int(bad_pair.sum())


def _normal_equations(x: np.ndarray, y: np.ndarray, w: np.ndarray, cams: list[CameraModel]) -> np.ndarray:
    """Σ_v w_v (I − d̂d̂ᵀ) X = Σ_v w_v (I − d̂d̂ᵀ) C_v for rays d = Rᵀ(x, y, 1) from centres C;
    X and C relative to the working volume's centre (small numbers for float32)."""
    acc = np.zeros((9, x.shape[1]), x.dtype)
    for v, cam in enumerate(cams):
        R, c = cam.R.astype(x.dtype), (cam.position_m - VOLUME_CENTRE_M).astype(x.dtype)
        d = [R[0, i] * x[v] + R[1, i] * y[v] + R[2, i] for i in range(3)]
        s = w[v] / (d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
        sd = [s * d[i] for i in range(3)]
        for col, (i, j) in enumerate([(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]):
            acc[col] -= sd[i] * d[j]
        for col in (0, 3, 5):
            acc[col] += w[v]
        dc = c[0] * d[0] + c[1] * d[1] + c[2] * d[2]
        for i in range(3):
            acc[6 + i] += c[i] * w[v] - sd[i] * dc
    return acc


def _reprojection_px(x: np.ndarray, y: np.ndarray, pts: np.ndarray, cams: list[CameraModel]) -> np.ndarray:
    """(V, m) image distance (pixels, at each camera's focal length) between each view's
    observation and the projection of ``pts`` (relative to the volume's centre); inf where
    the point is missing."""
    out = np.empty_like(x)
    for v, cam in enumerate(cams):
        R, t = cam.R.astype(x.dtype), (cam.R @ VOLUME_CENTRE_M + cam.t).astype(x.dtype)
        pc = [R[i, 0] * pts[0] + R[i, 1] * pts[1] + R[i, 2] * pts[2] + t[i] for i in range(3)]
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / pc[2]
            ex = x[v] - pc[0] * inv
            ey = y[v] - pc[1] * inv
        out[v] = np.sqrt(ex * ex + ey * ey) * x.dtype.type(np.sqrt(cam.fx * cam.fy))
    out[np.isnan(out)] = np.inf
    return out
