"""Has a camera moved since it was calibrated? Its still frame against the one stored at
calibration time.

Shi–Tomasi corners (Shi & Tomasi 1994) of the reference still are tracked into the current
still with pyramidal Lucas–Kanade (Bouguet 2001) and checked forward–backward (Kalal et al.
2010); the median displacement of the tracked corners is the camera's apparent motion.
The median ignores a person or a cart that moved in the room; sub-pixel tracking makes a
2 cm shift of a camera 3 m from the belt (≈ 5–9 px for scene 3–5 m away, ≈ 1.5 px at the
image edges for a move along the optical axis) stand far above the ≈ 0.05 px of sensor
noise. No board and no technician needed, so ``gaitrig diag`` can run it any time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CALIBRATION_STILL = "calibration_still.png"  # in the node's state directory, read by its self-test


def default_still_dir() -> Path | None:
    """The node's state directory (systemd's $STATE_DIRECTORY, else /var/lib/gaitrig) if
    it exists, else None: where ``gaitrig calibrate detect`` leaves the reference still
    and where the node's self-test (rig.node.diagnostics.aim_check) looks for it."""
    from rig.ops.health import state_dir
    found = state_dir()
    return None if found == Path("/") else found


def save_calibration_still(image: np.ndarray, state_dir: Path | str) -> Path:
    """Store a frame of the scene without the board, taken at calibration, as the
    reference for the camera-moved check (grey PNG, lossless: the check is sub-pixel)."""
    path = Path(state_dir) / CALIBRATION_STILL
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), _gray(image)):
        raise OSError(f"{path}: could not write the calibration still")
    return path


@dataclass
class MoveCheck:
    status: str  # "ok" | "moved" | "unknown" (too little texture to tell)
    shift_px: float  # median displacement of tracked scene corners (NaN when unknown)
    n_features: int
    message: str

    @property
    def moved(self) -> bool:
        return self.status == "moved"


class CameraMoveDetector:
    """Median Lucas–Kanade displacement of reference corners above ``threshold_px`` = moved."""

    def __init__(self, threshold_px: float = 0.5, max_corners: int = 400, min_features: int = 20,
                 max_fb_error_px: float = 0.3) -> None:
        self.threshold_px = threshold_px
        self.max_corners = max_corners
        self.min_features = min_features
        self.max_fb_error_px = max_fb_error_px

    def check(self, reference: np.ndarray, current: np.ndarray) -> MoveCheck:
        ref, cur = _gray(reference), _gray(current)
        if ref.shape != cur.shape:
            return MoveCheck("moved", float("nan"), 0, f"frame size changed: {ref.shape[::-1]} -> {cur.shape[::-1]}")
        pts = cv2.goodFeaturesToTrack(ref, self.max_corners, 0.01, 12, blockSize=7)
        if pts is None or len(pts) < self.min_features:
            return MoveCheck("unknown", float("nan"), 0 if pts is None else len(pts),
                             "too little texture in the reference still to tell")
        lk = dict(winSize=(21, 21), maxLevel=4, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 0.001))
        fwd, st1, _ = cv2.calcOpticalFlowPyrLK(ref, cur, pts, None, **lk)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, ref, fwd, None, **lk)
        good = (st1.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm(back - pts, axis=2).ravel() < self.max_fb_error_px)
        if good.sum() < self.min_features:
            return MoveCheck("moved", float("nan"), int(good.sum()),
                             f"only {int(good.sum())} of {len(pts)} scene corners found again: the view changed")
        shift = float(np.median(np.linalg.norm((fwd - pts)[good], axis=2)))
        moved = shift > self.threshold_px
        return MoveCheck("moved" if moved else "ok", shift, int(good.sum()),
                         f"scene shifted {shift:.2f} px (limit {self.threshold_px:g} px): "
                         + ("recalibrate this camera" if moved else "calibration still valid"))


def _gray(img: np.ndarray) -> np.ndarray:
    if img is None or img.ndim not in (2, 3):
        raise ValueError("a still frame must be a 2-D grey or 3-channel image")
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
