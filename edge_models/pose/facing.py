"""Which way the walker faces in a side view, estimated from the landmarks.

The coordinator needs ``facing`` to tell forward from backward in a side view. The nose sits
in front of the ears and the toes in front of the heels whatever the gait phase, so the sign
of the median of those horizontal offsets over the recording is a robust estimate.
"""
from __future__ import annotations

from typing import Iterable, Literal

import numpy as np

NOSE, LEFT_EAR, RIGHT_EAR = 0, 7, 8
LEFT_HEEL, RIGHT_HEEL, LEFT_TOE, RIGHT_TOE = 29, 30, 31, 32

Facing = Literal["left", "right"]


def facing_offsets_px(landmarks: np.ndarray) -> np.ndarray:
    """Horizontal 'forward' offsets of one frame: nose − ear centre, toe − heel (both feet)."""
    x = landmarks[:, 0]
    return np.array([x[NOSE] - (x[LEFT_EAR] + x[RIGHT_EAR]) / 2,
                     x[LEFT_TOE] - x[LEFT_HEEL], x[RIGHT_TOE] - x[RIGHT_HEEL]])


def estimate_facing(frames: Iterable[np.ndarray | None]) -> Facing | None:
    """'right' if the walker faces +x in the image, 'left' if −x, None without evidence."""
    offsets = [facing_offsets_px(lm) for lm in frames if lm is not None]
    if not offsets:
        return None
    median = float(np.median(np.concatenate(offsets)))
    if median == 0.0:
        return None
    return "right" if median > 0 else "left"
