"""A calibrated camera: pinhole with OpenCV's lens distortion model, pose in the world frame.

World frame (metres): the belt plane is z = 0 (z up), x is the walking direction, y the
walker's left. ``R`` and ``t`` map world to camera coordinates (x right, y down, z along the
optical axis), as OpenCV's ``solvePnP``/``calibrateCamera`` do: ``X_cam = R @ X_world + t``.

Distortion is OpenCV's five-term model (k1, k2, p1, p2, k3; Brown-Conrady). Projection is
pure numpy and vectorised; undistortion of many image points uses a precomputed table
sampled with ``cv2.remap`` (bilinear on a 2 px grid: within 0.05 px of ``cv2.undistortPoints``;
the table, 3 MB, stays in cache, which a per-pixel one does not)
because 38 million landmark observations per 10-minute session must be undistorted in
well under a second.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

CAMERA_FILE_FORMAT = "gaitrig-cameras/1"
_TABLE_STEP_PX = 2.0
_TABLE_MARGIN_PX = 32.0


class CameraFileError(ValueError):
    """A camera calibration file that cannot be used; the message says why."""


@dataclass
class CameraModel:
    """One calibrated camera. ``dist`` = (k1, k2, p1, p2, k3)."""

    name: str
    width_px: int
    height_px: int
    fx: float
    fy: float
    cx: float
    cy: float
    dist: np.ndarray
    R: np.ndarray  # (3, 3) world -> camera
    t: np.ndarray  # (3,) metres
    reprojection_error_px: float | None = None
    _table: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.dist = np.zeros(5) if self.dist is None else np.asarray(self.dist, float).reshape(5)
        self.R = np.asarray(self.R, float).reshape(3, 3)
        self.t = np.asarray(self.t, float).reshape(3)

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def position_m(self) -> np.ndarray:
        """Optical centre in the world frame."""
        return -self.R.T @ self.t

    @property
    def rvec(self) -> np.ndarray:
        return cv2.Rodrigues(self.R)[0].ravel()

    # --- projection -------------------------------------------------------------------
    def to_camera(self, points_m: np.ndarray) -> np.ndarray:
        """(..., 3) world -> (..., 3) camera coordinates."""
        return points_m @ self.R.T + self.t

    def distort_normalized(self, xn: np.ndarray, yn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ideal normalised image coordinates -> distorted pixel coordinates."""
        k1, k2, p1, p2, k3 = self.dist
        r2 = xn * xn + yn * yn
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xy2 = 2.0 * xn * yn
        xd = xn * radial + p1 * xy2 + p2 * (r2 + 2.0 * xn * xn)
        yd = yn * radial + p1 * (r2 + 2.0 * yn * yn) + p2 * xy2
        return self.fx * xd + self.cx, self.fy * yd + self.cy

    def project(self, points_m: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 2) pixel coordinates (NaN behind the camera)."""
        pc = self.to_camera(np.asarray(points_m, float))
        z = np.where(pc[..., 2] > 1e-9, pc[..., 2], np.nan)
        u, v = self.distort_normalized(pc[..., 0] / z, pc[..., 1] / z)
        return np.stack([u, v], axis=-1)

    # --- undistortion -----------------------------------------------------------------
    def undistort_exact(self, px: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> (..., 2) ideal normalised coordinates (cv2.undistortPoints)."""
        px = np.asarray(px, float)
        flat = px.reshape(-1, 1, 2)
        crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-12)
        out = cv2.undistortPointsIter(flat, self.K, self.dist, None, None, crit)
        return out.reshape(px.shape)

    def _undistort_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Normalised coordinates on a 2 px grid over the image and a 32 px margin."""
        if self._table is None:
            gx = np.arange(-_TABLE_MARGIN_PX, self.width_px + _TABLE_MARGIN_PX + 0.5, _TABLE_STEP_PX)
            gy = np.arange(-_TABLE_MARGIN_PX, self.height_px + _TABLE_MARGIN_PX + 0.5, _TABLE_STEP_PX)
            grid = np.stack(np.meshgrid(gx, gy), axis=-1)
            norm = self.undistort_exact(grid).astype(np.float32)
            self._table = (np.ascontiguousarray(norm[..., 0]), np.ascontiguousarray(norm[..., 1]))
        return self._table

    def undistort(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (float32, any shape, NaN allowed) -> ideal normalised
        coordinates (float32). Bilinear lookup in the table (cv2.remap interpolates in 1/32
        steps of the 2 px grid: < 0.05 px); points beyond the table go through the exact
        iterative solver; NaN stays NaN."""
        tx, ty = self._undistort_table()
        u32 = np.asarray(u, np.float32)
        v32 = np.asarray(v, np.float32)
        shape = u32.shape
        n = u32.size
        cols = 4096
        rows = -(-n // cols)
        flat_u = np.zeros(rows * cols, np.float32)
        flat_v = np.zeros(rows * cols, np.float32)
        scale, offset = 1.0 / _TABLE_STEP_PX, _TABLE_MARGIN_PX / _TABLE_STEP_PX
        np.multiply(u32.reshape(-1), scale, out=flat_u[:n])
        np.multiply(v32.reshape(-1), scale, out=flat_v[:n])
        flat_u[:n] += offset
        flat_v[:n] += offset
        mu, mv = flat_u.reshape(rows, cols), flat_v.reshape(rows, cols)
        xn = np.empty((rows, cols), np.float32)
        yn = np.empty((rows, cols), np.float32)
        for r0 in range(0, rows, 8192):  # cv2.remap needs each side < 32767
            sl = slice(r0, r0 + 8192)
            cv2.remap(tx, mu[sl], mv[sl], cv2.INTER_LINEAR, dst=xn[sl], borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
            cv2.remap(ty, mu[sl], mv[sl], cv2.INTER_LINEAR, dst=yn[sl], borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
        xn, yn = xn.reshape(-1)[:n], yn.reshape(-1)[:n]
        off = np.isnan(xn)
        if off.any():
            fu, fv = u32.reshape(-1)[off], v32.reshape(-1)[off]
            ok = np.isfinite(fu) & np.isfinite(fv)
            exact = np.full((off.sum(), 2), np.nan, np.float32)
            if ok.any():
                exact[ok] = self.undistort_exact(np.stack([fu[ok], fv[ok]], -1).astype(float))
            xn[off], yn[off] = exact[:, 0], exact[:, 1]
        return xn.reshape(shape), yn.reshape(shape)

    # --- storage ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dict(name=self.name, width_px=self.width_px, height_px=self.height_px, fx=self.fx, fy=self.fy,
                 cx=self.cx, cy=self.cy, dist=self.dist.tolist(), R=self.R.tolist(), t=self.t.tolist(),
                 position_m=self.position_m.tolist())
        if self.reprojection_error_px is not None:
            d["reprojection_error_px"] = self.reprojection_error_px
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CameraModel":
        try:
            cam = cls(name=str(d["name"]), width_px=int(d["width_px"]), height_px=int(d["height_px"]),
                      fx=float(d["fx"]), fy=float(d["fy"]), cx=float(d["cx"]), cy=float(d["cy"]),
                      dist=np.asarray(d["dist"], float), R=np.asarray(d["R"], float), t=np.asarray(d["t"], float),
                      reprojection_error_px=d.get("reprojection_error_px"))
        except (KeyError, TypeError, ValueError) as exc:
            raise CameraFileError(f"camera entry {d.get('name', '?')!r}: {exc}") from None
        if not np.allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-6):
            raise CameraFileError(f"camera {cam.name!r}: R is not a rotation matrix")
        return cam

    @classmethod
    def from_sim(cls, cam, dist: np.ndarray | None = None) -> "CameraModel":
        """The simulator's ideal camera (rig/sim/_camera.py) as a model, optionally with distortion."""
        R = np.asarray(cam.axes, float)
        t = -R @ np.asarray(cam.position_m, float)
        return cls(name=cam.view, width_px=cam.width_px, height_px=cam.height_px, fx=cam.focal_px, fy=cam.focal_px,
                   cx=cam.width_px / 2.0, cy=cam.height_px / 2.0, dist=dist, R=R, t=t)


def save_cameras(path: Path | str, cameras: dict[str, CameraModel], meta: dict | None = None) -> None:
    """Write the rig calibration as JSON (format ``gaitrig-cameras/1``)."""
    doc = {"format": CAMERA_FILE_FORMAT, **(meta or {}), "cameras": [c.to_dict() for c in cameras.values()]}
    Path(path).write_text(json.dumps(doc, indent=1))


def read_json_document(path: Path | str, fmt: str, error: type[Exception]) -> dict:
    """A JSON object whose ``format`` is ``fmt``; anything else raises ``error`` naming the file."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise error(f"{path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise error(f"{path}: not a {fmt} file")
    return doc


def load_cameras(path: Path | str) -> dict[str, CameraModel]:
    """Read a calibration written by :func:`save_cameras`; clear error on anything else."""
    doc = read_json_document(path, CAMERA_FILE_FORMAT, CameraFileError)
    entries = doc.get("cameras")
    if not isinstance(entries, list) or not all(isinstance(d, dict) for d in entries):
        raise CameraFileError(f"{path}: 'cameras' must be a list of camera entries")
    try:
        cams = [CameraModel.from_dict(d) for d in entries]
    except CameraFileError as exc:
        raise CameraFileError(f"{path}: {exc}") from None
    if not cams:
        raise CameraFileError(f"{path}: no cameras")
    return {c.name: c for c in cams}
