"""Rotated square regions of interest and the affine maps between image and model crops.

BlazePose crops a rotated square around the person so the landmark model always sees an
upright body of the same size. MediaPipe (AlignmentPointsRectsCalculator +
RectTransformationCalculator) builds that square from two alignment points: a centre and a
point whose distance gives the size and whose direction gives the rotation. We work in image
pixels throughout (MediaPipe's normalised rects are equivalent), which keeps the maths square.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# MediaPipe pose_detection_to_roi / pose_landmarks_to_roi (0.10.14): the body circle is
# expanded by 1.25 to the crop the landmark model was trained on.
ROI_SCALE = 1.25
# The vector centre -> scale point is rotated to point up (90° in MediaPipe's y-up angles).
TARGET_ANGLE_RAD = math.pi / 2


@dataclass(frozen=True)
class RotatedRect:
    """A rotated square in image pixels; rotation is clockwise on screen (y down)."""

    center_x_px: float
    center_y_px: float
    size_px: float
    rotation_rad: float


def normalize_radians(angle_rad: float) -> float:
    return angle_rad - 2 * math.pi * math.floor((angle_rad + math.pi) / (2 * math.pi))


def rect_from_alignment_points(center_xy_px: np.ndarray, scale_xy_px: np.ndarray,
                               scale: float = ROI_SCALE) -> RotatedRect:
    """The crop for a body whose hip centre and size/rotation point are given (pixels).

    Size is the diameter of the circle through the scale point (2·radius), times ``scale``.
    """
    dx = float(scale_xy_px[0] - center_xy_px[0])
    dy = float(scale_xy_px[1] - center_xy_px[1])
    size_px = 2.0 * math.hypot(dx, dy) * scale
    rotation = normalize_radians(TARGET_ANGLE_RAD - math.atan2(-dy, dx))
    return RotatedRect(float(center_xy_px[0]), float(center_xy_px[1]), size_px, rotation)


def letterbox_rect(width_px: int, height_px: int) -> RotatedRect:
    """The whole image padded to a centred square: the detector's input with letterboxing."""
    return RotatedRect(width_px / 2.0, height_px / 2.0, float(max(width_px, height_px)), 0.0)


def crop_to_image_matrix(rect: RotatedRect, crop_size_px: int) -> np.ndarray:
    """2×3 affine map from crop pixel coordinates (0…crop_size) to image pixels.

    Crop (0, 0) is the rect's top-left corner after rotation, as with OpenCV's boxPoints
    mapped onto the output corners in MediaPipe's ImageToTensor converter.
    """
    c, s = math.cos(rect.rotation_rad), math.sin(rect.rotation_rad)
    k = rect.size_px / crop_size_px
    half = rect.size_px / 2.0
    x0 = rect.center_x_px - half * c + half * s
    y0 = rect.center_y_px - half * s - half * c
    return np.array([[k * c, -k * s, x0], [k * s, k * c, y0]], dtype=np.float64)


def apply_affine(matrix: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine map to (n, 2) points."""
    return points_xy @ matrix[:, :2].T + matrix[:, 2]
