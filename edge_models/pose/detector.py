"""The BlazePose person detector: letterbox to 224×224, SSD anchors, decoding, weighted NMS.

Constants are MediaPipe 0.10.14's pose_detection_cpu graph (SsdAnchorsCalculator,
TensorsToDetectionsCalculator, NonMaxSuppressionCalculator). Each detection carries four
keypoints: 0 hip centre, 1 full-body size/rotation point, 2 shoulder centre, 3 upper-body
size/rotation point (the detector's box itself is the face).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edge_models.pose.geometry import apply_affine, crop_to_image_matrix, letterbox_rect

INPUT_SIZE_PX = 224
NUM_BOXES = 2254
MIN_SCORE = 0.5  # mp.solutions.pose min_detection_confidence default
NMS_MIN_IOU = 0.3
SCORE_CLIP = 100.0


@dataclass(frozen=True)
class Detection:
    """One person candidate in image pixels."""

    score: float
    box_xyxy_px: np.ndarray  # (4,) face box x0, y0, x1, y1
    keypoints_px: np.ndarray  # (4, 2)

    @property
    def hip_center_px(self) -> np.ndarray:
        return self.keypoints_px[0]

    @property
    def body_radius_px(self) -> float:
        return float(np.linalg.norm(self.keypoints_px[1] - self.keypoints_px[0]))


def ssd_anchor_centers(input_size_px: int = INPUT_SIZE_PX,
                       strides: tuple[int, ...] = (8, 16, 32, 32, 32)) -> np.ndarray:
    """(2254, 2) anchor centres, normalised to the input, in the model's output order.

    With ``fixed_anchor_size`` only centres matter. Consecutive layers with the same stride
    share one grid; each layer adds two anchors per cell (aspect 1.0 plus the interpolated
    scale), so stride 8 → 28²·2, 16 → 14²·2, the three 32s → 7²·6 = 2254.
    """
    centers = []
    layer = 0
    while layer < len(strides):
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
        per_cell = 2 * (last - layer)
        n = int(np.ceil(input_size_px / strides[layer]))
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centers.append(np.repeat(grid, per_cell, axis=0))
        layer = last
    return np.concatenate(centers).astype(np.float32)


def decode_boxes(raw_boxes: np.ndarray, anchors_xy: np.ndarray,
                 input_size_px: int = INPUT_SIZE_PX) -> tuple[np.ndarray, np.ndarray]:
    """Raw (n, 12) regressors → face boxes (n, 4) xyxy and keypoints (n, 4, 2), both in
    letterboxed-input pixels. Regressors are offsets in input pixels from the anchor centre
    (x, y order: ``reverse_output_order``)."""
    centers_px = anchors_xy * input_size_px
    cx = raw_boxes[:, 0] + centers_px[:, 0]
    cy = raw_boxes[:, 1] + centers_px[:, 1]
    half_w, half_h = raw_boxes[:, 2] / 2, raw_boxes[:, 3] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    keypoints = raw_boxes[:, 4:12].reshape(-1, 4, 2) + centers_px[:, None, :]
    return boxes, keypoints


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one xyxy box with (n, 4) boxes."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray,
                 min_iou: float = NMS_MIN_IOU) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """MediaPipe's WEIGHTED non-max suppression (as in BlazeFace): every cluster of boxes
    overlapping the best one by more than ``min_iou`` is replaced by their score-weighted
    mean box and keypoints, keeping the best score. Averaging steadies the keypoints that
    decide the crop, which plain NMS would take from a single anchor."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while order.size:
        best = order[0]
        in_cluster = iou(boxes[best], boxes[order]) > min_iou
        in_cluster[0] = True  # the best box, even if degenerate (zero area)
        cluster = order[in_cluster]
        w = scores[cluster][:, None]
        box = (boxes[cluster] * w).sum(0) / w.sum()
        kps = (keypoints[cluster] * w[:, :, None]).sum(0) / w.sum()
        out.append((float(scores[best]), box, kps))
        order = order[~in_cluster]
    return out


class PoseDetector:
    """Runs the detector model on a BGR frame; returns candidates best first, in pixels."""

    def __init__(self, interpreter: Any, min_score: float = MIN_SCORE):
        self._interpreter = interpreter
        self._min_score = min_score
        self._input_index = interpreter.get_input_details()[0]["index"]
        outputs = {tuple(d["shape"][1:]): d["index"] for d in interpreter.get_output_details()}
        self._boxes_index = outputs[(NUM_BOXES, 12)]
        self._scores_index = outputs[(NUM_BOXES, 1)]
        self._anchors = ssd_anchor_centers()
        self._crop_u8 = np.empty((INPUT_SIZE_PX, INPUT_SIZE_PX, 3), np.uint8)

    def _write_input(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Letterbox into the input tensor as RGB in [-1, 1]; returns crop→image matrix.
        Padding is black before scaling (BORDER_ZERO), i.e. −1 in the tensor, as MediaPipe."""
        h, w = frame_bgr.shape[:2]
        to_image = crop_to_image_matrix(letterbox_rect(w, h), INPUT_SIZE_PX)
        cv2.warpAffine(frame_bgr, to_image, (INPUT_SIZE_PX, INPUT_SIZE_PX), dst=self._crop_u8,
                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        view = self._interpreter.tensor(self._input_index)()[0]
        np.multiply(self._crop_u8[:, :, ::-1], 2.0 / 255.0, out=view, casting="unsafe")
        view -= 1.0
        del view  # the interpreter refuses to run while numpy views of its buffers exist
        return to_image

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        to_image = self._write_input(frame_bgr)
        self._interpreter.invoke()
        raw_scores = self._interpreter.get_tensor(self._scores_index)[0, :, 0].astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -SCORE_CLIP, SCORE_CLIP)))
        keep = scores >= self._min_score
        if not keep.any():
            return []
        raw_boxes = self._interpreter.get_tensor(self._boxes_index)[0][keep]
        boxes, keypoints = decode_boxes(raw_boxes, self._anchors[keep])
        detections = []
        for score, box, kps in weighted_nms(scores[keep], boxes, keypoints):
            box_px = apply_affine(to_image, box.reshape(2, 2)).ravel()
            detections.append(Detection(score, box_px, apply_affine(to_image, kps)))
        return detections
