"""Which person is the patient: the one standing on the treadmill belt.

Each camera is configured with a belt region (fractions of the image width and height,
where the patient's feet are). A clinician beside the treadmill may be in view, and users of
open pose tools report trackers jumping to the wrong person; so a candidate is accepted only
if its feet are on the belt, and a track is dropped (and the detector asked again) as soon as
the tracked feet leave it, instead of following whoever the crop drifted onto.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from edge_models.pose.detector import Detection

FOOT_LANDMARKS = (27, 28, 29, 30, 31, 32)  # ankles, heels, foot indices
# Tolerances, as fractions of the image size. The detector only gives a rough foot point
# (hip centre mirrored through the body circle), the landmarks a precise one.
DETECTION_MARGIN_FRAC = 0.08
LANDMARK_MARGIN_FRAC = 0.04


@dataclass(frozen=True)
class BeltRoi:
    """Belt region in fractions of image width/height: x0 < x1, y0 < y1, all in [0, 1]."""

    x0: float = 0.0
    y0: float = 0.0
    x1: float = 1.0
    y1: float = 1.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.x0 < self.x1 <= 1.0 and 0.0 <= self.y0 < self.y1 <= 1.0):
            raise ValueError(f"belt ROI {self.as_text()} must satisfy 0 <= x0 < x1 <= 1 "
                             "and 0 <= y0 < y1 <= 1 (fractions of width and height)")

    @classmethod
    def parse(cls, text: str) -> "BeltRoi":
        """From ``"x0,y0,x1,y1"``; ValueError with the expected form otherwise."""
        parts = text.split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 4:
            raise ValueError(f"belt ROI {text!r} must be four numbers x0,y0,x1,y1 "
                             "(fractions of image width and height)")
        return cls(*values)

    @property
    def is_whole_image(self) -> bool:
        return (self.x0, self.y0, self.x1, self.y1) == (0.0, 0.0, 1.0, 1.0)

    def as_text(self) -> str:
        return f"{self.x0:g},{self.y0:g},{self.x1:g},{self.y1:g}"

    def contains(self, xy_px: np.ndarray, width_px: int, height_px: int,
                 margin_frac: float = 0.0) -> bool:
        """Whether an image point lies in the region grown by ``margin_frac`` of the image."""
        x = xy_px[0] / width_px
        y = xy_px[1] / height_px
        m = margin_frac
        return bool(self.x0 - m <= x <= self.x1 + m and self.y0 - m <= y <= self.y1 + m)

    def center_px(self, width_px: int, height_px: int) -> np.ndarray:
        return np.array([(self.x0 + self.x1) / 2 * width_px, (self.y0 + self.y1) / 2 * height_px])


def detection_feet_px(detection: Detection) -> np.ndarray:
    """Rough foot point of a detection: keypoint 1 is the top of the body circle around the
    hip centre (keypoint 0), so the feet are about as far below the hips."""
    hip, top = detection.keypoints_px[0], detection.keypoints_px[1]
    return 2.0 * hip - top


def landmark_feet_px(landmarks: np.ndarray) -> np.ndarray:
    """Mean of ankle, heel and toe landmarks (image pixels)."""
    return landmarks[list(FOOT_LANDMARKS), :2].mean(axis=0)


def patient_candidates(detections: Sequence[Detection], belt: BeltRoi, width_px: int,
                       height_px: int, last_hip_px: np.ndarray | None = None) -> list[Detection]:
    """Detections whose feet are on the belt, most likely patient first: nearest to where the
    patient was last seen if known, else nearest the belt's centre (a patient walks mid-belt)."""
    on_belt = [d for d in detections
               if belt.contains(detection_feet_px(d), width_px, height_px, DETECTION_MARGIN_FRAC)]
    anchor = last_hip_px if last_hip_px is not None else None
    if anchor is not None:
        return sorted(on_belt, key=lambda d: float(np.linalg.norm(d.hip_center_px - anchor)))
    if belt.is_whole_image:
        return list(on_belt)  # keep detector order (best score first), as MediaPipe does
    centre = belt.center_px(width_px, height_px)
    return sorted(on_belt, key=lambda d: float(np.linalg.norm(detection_feet_px(d) - centre)))


def landmarks_on_belt(landmarks: np.ndarray, belt: BeltRoi, width_px: int, height_px: int) -> bool:
    return belt.is_whole_image or belt.contains(landmark_feet_px(landmarks), width_px, height_px,
                                                LANDMARK_MARGIN_FRAC)
