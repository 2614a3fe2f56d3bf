"""A still frame for a technician checking a camera's aim: a JPEG of the last captured image,
or — for a simulated camera, which has no image — the walker's skeleton drawn where the
camera sees it, so the framing (is the whole body, are the feet in view?) can be judged."""
from __future__ import annotations

import cv2
import numpy as np

JPEG_QUALITY = 80
MAX_WIDTH_PX = 1456  # the Global Shutter camera's full width: no downscaling on the rig
# BlazePose landmark pairs: torso, arms, legs down to heel and toe
BONES = ((11, 12), (11, 23), (12, 24), (23, 24), (11, 13), (13, 15), (12, 14), (14, 16),
         (23, 25), (25, 27), (27, 29), (29, 31), (27, 31), (24, 26), (26, 28), (28, 30), (30, 32), (28, 32))
LEFT = (0, 200, 255)  # BGR: subject's left orange, right cyan, as the clinic's other tools
RIGHT = (255, 200, 0)


def render_skeleton(lm: np.ndarray | None, width: int, height: int, scale: float = 1.0) -> np.ndarray:
    """A dark frame of the camera's size times ``scale`` with the landmarks (33 × x, y px in
    the camera's frame, …) drawn on it: the simulated camera's picture, and the still of it."""
    w, h = round(width * scale), round(height * scale)
    img = np.full((h, w, 3), 24, np.uint8)
    cv2.rectangle(img, (0, 0), (w - 1, h - 1), (90, 90, 90), 2)
    if lm is None or np.isnan(lm[:, :2]).all():
        cv2.putText(img, "nobody in view", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (200, 200, 200), 2)
        return img
    pts = (np.nan_to_num(lm[:, :2], nan=-1) * scale).round().astype(int)
    thick = max(1, round(3 * scale))
    for a, b in BONES:
        color = LEFT if a % 2 and b % 2 else RIGHT if not (a % 2 or b % 2) else (200, 200, 200)
        cv2.line(img, tuple(pts[a]), tuple(pts[b]), color, thick, cv2.LINE_AA)
    cv2.circle(img, tuple(pts[0]), max(2, round(12 * scale)), (200, 200, 200), thick)  # the head, at the nose
    return img


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    if image.shape[1] > MAX_WIDTH_PX:
        scale = MAX_WIDTH_PX / image.shape[1]
        image = cv2.resize(image, (MAX_WIDTH_PX, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
