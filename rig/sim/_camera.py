"""Pinhole cameras of the rig and BlazePose-like image landmarks [x_px, y_px, z, visibility].

Projection uses only element-wise arithmetic (no BLAS) so that one frame and a batch give
bit-identical results.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._body import LEFT_LANDMARKS, RIGHT_LANDMARKS, SWAP_PERMUTATION

WIDTH_PX, HEIGHT_PX = 1456, 1088  # IMX296 global shutter sensor


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: ``position_m`` on the treadmill frame looking along ``forward``."""

    view: str
    position_m: tuple[float, float, float]
    forward: tuple[float, float, float]
    focal_px: float = 1300.0
    width_px: int = WIDTH_PX
    height_px: int = HEIGHT_PX

    @cached_property
    def axes(self) -> np.ndarray:
        """Rows: image right, image down, optical axis (treadmill frame)."""
        f = np.asarray(self.forward, float)
        right = np.cross(f, [0.0, 0.0, 1.0])
        down = np.cross(f, right)
        return np.stack([right, down, f])

    @property
    def facing(self) -> str | None:
        """Side views: the way the walker (facing +x) faces in the image."""
        if self.view not in ("left", "right"):
            return None
        return "right" if self.axes[0, 0] > 0 else "left"


def default_cameras(distance_m: float = 3.0, height_m: float = 0.9, focal_px: float = 1300.0) -> dict[str, Camera]:
    """Side cameras on the walker's left (+y) and right (-y), rear (-x) and front (+x).

    With f = 1300 px at 3 m a 1.75 m person spans ~760 px, 70 % of the 1088 px height.
    """
    d, h = distance_m, height_m
    return {
        "left": Camera("left", (0.0, d, h), (0.0, -1.0, 0.0), focal_px),
        "right": Camera("right", (0.0, -d, h), (0.0, 1.0, 0.0), focal_px),
        "rear": Camera("rear", (-d, 0.0, h), (1.0, 0.0, 0.0), focal_px),
        "front": Camera("front", (d, 0.0, h), (-1.0, 0.0, 0.0), focal_px),
    }


def camera_coords(cam: Camera, world_t: np.ndarray) -> np.ndarray:
    """(3, ...) treadmill-frame coordinates (component first) -> camera coordinates
    (right, down, depth), component first. Zero rotation terms are skipped."""
    r = cam.axes
    p = [world_t[k] - cam.position_m[k] for k in range(3)]
    out = []
    for row in r:
        acc = None
        for k in range(3):
            if row[k] != 0.0:
                term = p[k] * row[k] if row[k] != 1.0 else p[k]
                acc = term if acc is None else acc + term
        out.append(acc if acc is not None else np.zeros_like(p[0]))
    return out


def project(cam: Camera, world_t: np.ndarray) -> np.ndarray:
    """(3, n, 33) world (component first) -> (n, 33, 4) [x_px, y_px, z, visibility],
    without artefacts.

    z is BlazePose-like: depth relative to the hip midpoint, in pixels at the hips' depth
    (negative = nearer the camera).
    """
    xc, yc, zc = camera_coords(cam, world_t)
    f, cx, cy = cam.focal_px, cam.width_px / 2.0, cam.height_px / 2.0
    inv = f / zc
    x = cx + xc * inv
    y = cy + yc * inv
    hip_depth = 0.5 * (zc[:, 23] + zc[:, 24])
    z = (zc - hip_depth[:, None]) * (f / hip_depth)[:, None]
    return np.stack([x, y, z, visibility(cam, x, y)], axis=-1)


def visibility(cam: Camera, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Near side ~0.97, far side in side views 0.55-0.75 (lower where it is hidden
    behind its near twin); rear view: face 0.5, toes 0.8; front view: heels 0.7."""
    vis = np.full(x.shape, 0.96)
    if cam.view in ("left", "right"):
        near, far = (LEFT_LANDMARKS, RIGHT_LANDMARKS) if cam.view == "left" else (RIGHT_LANDMARKS, LEFT_LANDMARKS)
        dx = x[:, far] - x[:, near]
        dy = y[:, far] - y[:, near]
        overlap = np.exp(-(dx * dx + dy * dy) / (2 * 25.0 ** 2))
        vis[:, near] = 0.97
        vis[:, far] = 0.75 - 0.2 * overlap
    elif cam.view == "rear":
        vis[:, 0:11] = 0.5
        vis[:, 31:33] = 0.8
    else:
        vis[:, 29:31] = 0.7
    return vis


def swap_labels(lm: np.ndarray) -> np.ndarray:
    """Exchange the subject's left and right labels (what pose models do in side views)."""
    return lm[:, SWAP_PERMUTATION]


def unproject_x_to_world(cam: Camera, img_x: np.ndarray, world: np.ndarray, axis: int) -> np.ndarray:
    """World coordinate ``axis`` that puts a point at image column ``img_x`` keeping its
    other two world coordinates; valid when that axis is perpendicular to the optical
    axis (rear/front views and y)."""
    r = cam.axes
    p = world - np.asarray(cam.position_m)
    depth = p[..., 0] * r[2, 0] + p[..., 1] * r[2, 1] + p[..., 2] * r[2, 2]  # exact for 0/1 terms
    target = (img_x - cam.width_px / 2.0) * depth / cam.focal_px  # camera right coordinate
    others = [k for k in range(3) if k != axis]
    rest = p[..., others[0]] * r[0, others[0]] + p[..., others[1]] * r[0, others[1]]
    return (target - rest) / r[0, axis] + cam.position_m[axis]
