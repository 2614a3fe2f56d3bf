"""Pure parts of the BlazePose pipeline: anchors, decoding, NMS, crop geometry, heatmap
refinement, ROI filter, belt selection, facing — exact expectations, no models needed."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edge_models.pose.detector import (Detection, decode_boxes, iou, ssd_anchor_centers,
                                       weighted_nms)
from edge_models.pose.facing import estimate_facing
from edge_models.pose.filters import OneEuroFilter
from edge_models.pose.geometry import (RotatedRect, apply_affine, crop_to_image_matrix,
                                       letterbox_rect, rect_from_alignment_points)
from edge_models.pose.landmarks import refine_with_heatmap
from edge_models.pose.selection import (BeltRoi, detection_feet_px, landmarks_on_belt,
                                        patient_candidates)


def test_anchor_layout_matches_model_output_order():
    a = ssd_anchor_centers()
    assert a.shape == (2254, 2)
    # stride 8: 28x28 cells, 2 anchors each, row-major, x fastest
    assert np.allclose(a[0], [0.5 / 28, 0.5 / 28]) and np.allclose(a[1], a[0])
    assert np.allclose(a[2], [1.5 / 28, 0.5 / 28])
    assert np.allclose(a[2 * 28], [0.5 / 28, 1.5 / 28])
    # stride 16 starts after 1568 anchors; the three stride-32 layers share 6 per cell
    assert np.allclose(a[1568], [0.5 / 14, 0.5 / 14])
    assert np.allclose(a[1568 + 392: 1568 + 392 + 6], [0.5 / 7, 0.5 / 7])
    assert np.allclose(a[-1], [6.5 / 7, 6.5 / 7])


def test_decode_offsets_are_input_pixels_from_anchor_centre():
    anchors = np.array([[0.5, 0.25]], np.float32)
    raw = np.array([[2, -4, 20, 10, 1, 1, -1, -1, 0, 0, 3, 4]], np.float32)
    boxes, kps = decode_boxes(raw, anchors, 224)
    assert np.allclose(boxes[0], [112 + 2 - 10, 56 - 4 - 5, 112 + 2 + 10, 56 - 4 + 5])
    assert np.allclose(kps[0], [[113, 57], [111, 55], [112, 56], [115, 60]])


def test_iou_and_weighted_nms_merges_overlapping_and_keeps_separate():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    assert iou(boxes[0], boxes).round(4).tolist() == [1.0, round(90 / 110, 4), 0.0]
    scores = np.array([0.9, 0.6, 0.8])
    kps = np.zeros((3, 4, 2))
    kps[1] += 10.0
    out = weighted_nms(scores, boxes, kps)
    assert [round(s, 3) for s, _, _ in out] == [0.9, 0.8]
    score, box, kp = out[0]
    assert np.allclose(box, [0.4, 0, 10.4, 10])  # (0.9*0 + 0.6*1) / 1.5
    assert np.allclose(kp, 4.0)  # (0.6*10) / 1.5
    assert np.allclose(out[1][1], boxes[2])


def test_alignment_rect_is_upright_square_around_hips():
    # scale point straight above the hips: no rotation, side = 2 * radius * 1.25
    r = rect_from_alignment_points(np.array([100.0, 300.0]), np.array([100.0, 200.0]))
    assert (r.center_x_px, r.center_y_px, r.size_px) == (100.0, 300.0, 250.0)
    assert r.rotation_rad == pytest.approx(0.0)
    # body leaning right (scale point up-right at 45°) → crop rotated clockwise by 45°
    r = rect_from_alignment_points(np.array([0.0, 0.0]), np.array([10.0, -10.0]), scale=1.0)
    assert r.rotation_rad == pytest.approx(math.pi / 4)
    assert r.size_px == pytest.approx(2 * math.hypot(10, 10))


def test_crop_matrix_maps_corners_and_centre():
    r = RotatedRect(100.0, 50.0, 40.0, math.pi / 2)
    m = crop_to_image_matrix(r, 256)
    pts = apply_affine(m, np.array([[128.0, 128.0], [0.0, 0.0], [256.0, 0.0]]))
    assert np.allclose(pts[0], [100, 50])
    # rotated 90° clockwise: crop's top-left is the image's top-right of the square
    assert np.allclose(pts[1], [120, 30])
    assert np.allclose(pts[2], [120, 70])


def test_letterbox_of_portrait_image_pads_left_and_right():
    m = crop_to_image_matrix(letterbox_rect(1080, 1920), 224)
    corners = apply_affine(m, np.array([[0.0, 0.0], [224.0, 224.0]]))
    assert np.allclose(corners, [[-420, 0], [1500, 1920]])


def test_heatmap_refinement_moves_to_weighted_peak_only_when_confident():
    hm = np.full((64, 64, 2), -20.0)
    hm[10, 20, 0] = 20.0  # a confident peak for point 0 at column 20, row 10
    hm[40, 40, 1] = -1.0  # point 1: peak confidence sigmoid(-1) = 0.27 < 0.5
    xy = np.array([[21.5 / 64, 11.2 / 64], [40.0 / 64, 40.0 / 64]])
    out = refine_with_heatmap(xy, hm, kernel=9)
    assert out[0] == pytest.approx([20 / 64, 10 / 64], abs=1e-6)
    assert np.array_equal(out[1], xy[1])
    outside = np.array([[1.5, 0.5], [0.5, 0.5]])
    assert refine_with_heatmap(outside, hm)[0].tolist() == [1.5, 0.5]


def test_one_euro_holds_still_points_and_follows_fast_ones():
    f = OneEuroFilter()
    assert f.apply(np.array([100.0])).tolist() == [100.0]  # first sample passes
    jitter = f.apply(np.array([101.0]), value_scale=1 / 400)[0]
    assert 100.0 < jitter < 100.1  # 1 px of jitter on a 400 px body is mostly held
    f.reset()
    f.apply(np.array([0.0]))
    moves = [f.apply(np.array([x]), value_scale=1 / 400)[0] for x in (40.0, 80.0, 120.0)]
    assert moves[-1] > 60.0  # a fast movement is followed


def test_belt_roi_parse_and_validate():
    assert BeltRoi.parse("0.1,0.5,0.9,1") == BeltRoi(0.1, 0.5, 0.9, 1.0)
    for bad in ("0.1,0.5,0.9", "a,b,c,d", "0.9,0,0.1,1", "0,0,1,1.5"):
        with pytest.raises(ValueError, match="belt ROI"):
            BeltRoi.parse(bad)


def _det(hip, top, score=0.9):
    kps = np.array([hip, top, hip, top], float)
    return Detection(score, np.zeros(4), kps)


def test_candidates_are_only_people_with_feet_on_the_belt():
    w, h = 2000, 1000
    patient = _det((500, 500), (500, 200), 0.7)  # feet ≈ (500, 800)
    clinician = _det((1500, 500), (1500, 200), 0.95)  # feet ≈ (1500, 800)
    belt = BeltRoi(0.1, 0.6, 0.4, 1.0)
    assert patient_candidates([clinician, patient], belt, w, h) == [patient]
    assert np.allclose(detection_feet_px(patient), [500, 800])
    # whole image: detector order, as MediaPipe
    assert patient_candidates([clinician, patient], BeltRoi(), w, h) == [clinician, patient]
    lm = np.zeros((33, 4))
    lm[27:33, :2] = [1500, 800]
    assert not landmarks_on_belt(lm, belt, w, h)
    assert landmarks_on_belt(lm, BeltRoi(), w, h)


def test_facing_from_nose_and_toes():
    lm = np.zeros((33, 4))
    lm[0, 0], lm[7, 0], lm[8, 0] = 110, 100, 100  # nose right of the ears
    lm[31, 0], lm[29, 0], lm[32, 0], lm[30, 0] = 60, 50, 61, 50
    assert estimate_facing([lm, None, lm]) == "right"
    flipped = lm.copy()
    flipped[:, 0] *= -1
    assert estimate_facing([flipped]) == "left"
    assert estimate_facing([None, None]) is None
