"""Simulated calibration footage: the ChArUco board rendered through cameras with known
parameters (pinhole + OpenCV distortion), with blur and sensor noise, so calibration can be
tested against exact truth.

The technician's minute, as simulated: first the board is shown up close to each camera
(0.9–1.4 m, tilted up to 45°, reaching into the image corners: this is what fixes focal length and
lens distortion), then stood on its bottom edge on the belt and turned through a full
circle, tilted back and forth (each pose seen by the one or two cameras it faces: this
links the cameras and gives the belt plane).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from rig.threed.camera import CameraModel

from .board import BoardSpec, board_image

_TEXTURE_PX_PER_M = (500.0, 1500.0)  # whole pixels per square, marker and margin
_PAD_PX = 300
BACKGROUND = 110
BOARD_BACK = 190


@dataclass(frozen=True)
class BoardPose:
    """Board -> world: ``X_world = R @ X_board + t`` at trigger index ``index``."""

    index: int
    R: np.ndarray
    t: np.ndarray


def _facing_rotation(normal: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """Board axes (columns x, y, z in world) for a printed face looking along ``normal``:
    board y (down the print) as close to -up as the normal allows; z = -normal."""
    z = -normal / np.linalg.norm(normal)
    y = -up + np.dot(up, z) * z
    y /= np.linalg.norm(y)
    return np.stack([np.cross(y, z), y, z], axis=1)


def belt_poses(spec: BoardSpec, n: int, rng: np.random.Generator, first_index: int = 10_000) -> list[BoardPose]:
    """Board standing on its bottom edge near the belt's centre, turned through 360°."""
    poses = []
    for k in range(n):
        yaw = np.radians(k * 360.0 / n + rng.uniform(-5, 5))
        tilt = np.radians(rng.uniform(-15, 25))  # positive: face tilted up
        normal = np.array([np.cos(yaw) * np.cos(tilt), np.sin(yaw) * np.cos(tilt), np.sin(tilt)])
        R = _facing_rotation(normal)
        edge_mid = np.append(rng.uniform([-0.25, -0.15], [0.25, 0.15]), 0.0)
        t = edge_mid - R @ spec.bottom_edge_m.mean(axis=0)
        poses.append(BoardPose(first_index + k, R, t))
    return poses


def closeup_poses(spec: BoardSpec, cam: CameraModel, n: int, rng: np.random.Generator,
                  first_index: int) -> list[BoardPose]:
    """Board held 0.9–1.4 m in front of one camera, off-centre and tilted up to 45°."""
    centre_b = np.array([spec.squares_x, spec.squares_y, 0.0]) * spec.square_m / 2
    poses = []
    for k in range(n):
        px = rng.uniform([0.1, 0.1], [0.9, 0.9]) * [cam.width_px, cam.height_px]
        ray_c = np.array([(px[0] - cam.cx) / cam.fx, (px[1] - cam.cy) / cam.fy, 1.0])
        centre_w = cam.R.T @ (ray_c * rng.uniform(0.9, 1.4) - cam.t)
        toward_cam = cam.position_m - centre_w
        rx, ry = np.radians(rng.uniform(-45, 45, 2))
        tilt = cv2.Rodrigues(cam.R.T @ np.array([rx, ry, 0.0]))[0]
        R = tilt @ _facing_rotation(toward_cam)
        poses.append(BoardPose(first_index + k, R, centre_w - R @ centre_b))
    return poses


@lru_cache(maxsize=8)
def _texture(spec: BoardSpec, px_per_m: float) -> np.ndarray:
    return board_image(spec, px_per_m)


@lru_cache(maxsize=8)
def _distortion_map(cam_key: tuple) -> tuple[np.ndarray, np.ndarray]:
    """For every output (distorted) pixel, its ideal pixel position (exact undistortion)."""
    cam = _CAMS[cam_key]
    grid = np.stack(np.meshgrid(np.arange(cam.width_px, dtype=float), np.arange(cam.height_px, dtype=float)), -1)
    norm = cam.undistort_exact(grid)
    return ((norm[..., 0] * cam.fx + cam.cx + _PAD_PX).astype(np.float32),
            (norm[..., 1] * cam.fy + cam.cy + _PAD_PX).astype(np.float32))


_CAMS: dict[tuple, CameraModel] = {}


def _cam_key(cam: CameraModel) -> tuple:
    key = (cam.name, cam.width_px, cam.height_px, cam.fx, cam.fy, cam.cx, cam.cy, tuple(cam.dist))
    _CAMS[key] = cam
    return key


def faces(spec: BoardSpec, cam: CameraModel, pose: BoardPose, min_cos: float = 0.2) -> bool:
    """Whether the printed side faces ``cam`` (by default more than 78° off-axis counts as
    not: the detector finds nothing there, so the simulation need not render it)."""
    centre_w = pose.R @ (np.array([spec.squares_x, spec.squares_y, 0.0]) * spec.square_m / 2) + pose.t
    to_cam = cam.position_m - centre_w
    return float(-pose.R[:, 2] @ to_cam / np.linalg.norm(to_cam)) > min_cos


@dataclass(frozen=True)
class Plane:
    """A flat textured object: texture pixel (u, v) sits at plane point
    ((u + 0.5) / px_per_m + offset_m, (v + 0.5) / px_per_m + offset_m, 0), placed by ``pose``."""

    texture: np.ndarray
    px_per_m: float
    offset_m: float
    pose: BoardPose


def board_plane(spec: BoardSpec, cam: CameraModel, pose: BoardPose) -> Plane:
    """The board as a plane, with the texture resolution nearest the camera's sampling
    (no aliasing) and its plain back when the printed side faces away."""
    centre_c = cam.to_camera(pose.R @ (np.array([spec.squares_x, spec.squares_y, 0.0]) * spec.square_m / 2) + pose.t)
    scale_px_per_m = cam.fx / max(centre_c[2], 1e-6)
    ppm = next((p for p in _TEXTURE_PX_PER_M if p >= scale_px_per_m), _TEXTURE_PX_PER_M[-1])
    tex = _texture(spec, ppm)
    if not faces(spec, cam, pose, min_cos=0.0):
        tex = np.full_like(tex, BOARD_BACK)
    return Plane(tex, ppm, -spec.margin_m, pose)


def render(spec: BoardSpec, cam: CameraModel, pose: BoardPose, rng: np.random.Generator,
           noise_grey: float = 3.0, blur_px: float = 0.8) -> np.ndarray:
    """8-bit grey frame of the board at ``pose`` seen by ``cam``."""
    return render_scene(cam, [board_plane(spec, cam, pose)], rng, noise_grey, blur_px)


def backdrop(cam: CameraModel, rng: np.random.Generator, distance_m: float = 5.0,
             size_m: tuple[float, float] = (6.0, 4.0), px_per_m: float = 300.0) -> Plane:
    """A textured wall (blotches of several sizes) facing ``cam`` at ``distance_m``: the
    room behind the treadmill, for the camera-moved check."""
    h, w = int(size_m[1] * px_per_m), int(size_m[0] * px_per_m)
    tex = np.zeros((h, w), np.float32)
    for cell in (8, 24, 72):
        small = rng.random((h // cell + 1, w // cell + 1)).astype(np.float32)
        tex += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    tex = cv2.normalize(tex, None, 30, 220, cv2.NORM_MINMAX).astype(np.uint8)
    forward = cam.R[2]
    centre = cam.position_m + forward * distance_m
    R = _facing_rotation(-forward)
    t = centre - R @ (np.array([*size_m, 0.0]) / 2)
    return Plane(tex, px_per_m, 0.0, BoardPose(-1, R, t))


def render_scene(cam: CameraModel, planes: list[Plane], rng: np.random.Generator, noise_grey: float = 3.0,
                 blur_px: float = 0.8) -> np.ndarray:
    """Planes painted far to near through the ideal pinhole, then the lens distortion
    (exact inverse map), blur and sensor noise."""
    size = (cam.width_px + 2 * _PAD_PX, cam.height_px + 2 * _PAD_PX)
    out = np.full(size[::-1], BACKGROUND, np.uint8)
    shift = np.array([[1, 0, _PAD_PX], [0, 1, _PAD_PX], [0, 0, 1.0]])
    depth = [cam.to_camera(p.pose.t)[2] for p in planes]
    for k in np.argsort(depth)[::-1]:
        p = planes[k]
        R_cb = cam.R @ p.pose.R
        t_cb = cam.R @ p.pose.t + cam.t
        if depth[k] <= 0.1:
            continue
        o = 0.5 / p.px_per_m + p.offset_m
        to_plane = np.array([[1 / p.px_per_m, 0, o], [0, 1 / p.px_per_m, o], [0, 0, 1]])
        H = shift @ cam.K @ np.column_stack([R_cb[:, 0], R_cb[:, 1], t_cb]) @ to_plane
        cv2.warpPerspective(p.texture, H, size, dst=out, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    mx, my = _distortion_map(_cam_key(cam))
    img = cv2.remap(out, mx, my, cv2.INTER_LINEAR).astype(np.float32)
    if blur_px > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur_px)
    img += rng.normal(0.0, noise_grey, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


# Lens distortion of the simulated rig (OpenCV k1, k2, p1, p2, k3): a mild barrel, as the
# Global Shutter camera's 6 mm lens shows.
EXAMPLE_DISTORTION = {"left": [-0.12, 0.05, 0.0005, -0.0003, 0.0], "right": [-0.10, 0.04, -0.0004, 0.0002, 0.0],
                      "rear": [-0.08, 0.02, 0.0, 0.0004, 0.0], "front": [-0.11, 0.06, 0.0003, 0.0, -0.01]}


def footage(spec: BoardSpec, cams: dict[str, CameraModel], rng: np.random.Generator, closeups: int = 24,
            n_belt: int = 72):
    """Yield (view, trigger index, frame) for the simulated minute: close-ups per camera
    (indices 1000·k + i), then the board turned on the belt (indices from 10 000; only the
    cameras it faces are rendered — the others would see its plain back)."""
    for k, (view, cam) in enumerate(cams.items()):
        for pose in closeup_poses(spec, cam, closeups, rng, 1000 * k):
            yield view, pose.index, render(spec, cam, pose, rng)
    for pose in belt_poses(spec, n_belt, rng):
        for view, cam in cams.items():
            if faces(spec, cam, pose):
                yield view, pose.index, render(spec, cam, pose, rng)
