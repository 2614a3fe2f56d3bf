"""Rig calibration against simulated ChArUco footage rendered with known cameras (the
rig's four cameras of rig/sim/_camera.py with lens distortion, noise and blur): the
joint solve recovers where the cameras are and how they point; a moved camera is seen."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from rig.calibration.board import BoardDetector, BoardSpec, write_pdf, write_png
from rig.calibration.moved import CameraMoveDetector
from rig.calibration.simulate import (EXAMPLE_DISTORTION, backdrop, belt_poses, board_plane, closeup_poses, footage,
                                     render_scene)
from rig.calibration.solve import CalibrationError, RigCalibrator
from rig.sim._camera import default_cameras
from rig.threed.camera import CameraModel, load_cameras

SPEC = BoardSpec()


@pytest.fixture(scope="module")
def cams() -> dict[str, CameraModel]:
    return {k: CameraModel.from_sim(c, dist=EXAMPLE_DISTORTION[k]) for k, c in default_cameras().items()}


@pytest.fixture(scope="module")
def detections(cams):
    """The simulated minute: 24 close-ups per camera, the board turned on the belt in 72 poses."""
    det = BoardDetector(SPEC)
    rng = np.random.default_rng(0)
    found = [det.detect(img, view, index) for view, index, img in footage(SPEC, cams, rng, 24, 72)]
    return [d for d in found if d is not None]


@pytest.fixture(scope="module")
def solved(cams, detections):
    return RigCalibrator(SPEC, {k: (c.width_px, c.height_px) for k, c in cams.items()}).solve(detections)


def rotation_error_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(Ra @ Rb.T) - 1) / 2, -1, 1))))


def test_cameras_recovered_within_5_mm_and_0_3_deg(cams, solved):
    assert set(solved.cameras) == set(cams)
    for view, truth in cams.items():
        est = solved.cameras[view]
        pos_err_mm = 1000 * np.linalg.norm(est.position_m - truth.position_m)
        assert pos_err_mm < 5.0, (view, pos_err_mm)
        assert rotation_error_deg(est.R, truth.R) < 0.3, view
        assert abs(est.fx - truth.fx) < 4.0 and abs(est.cx - truth.cx) < 4.0
        assert np.allclose(est.dist[:2], truth.dist[:2], atol=0.03)
        assert 0.03 < solved.rms_px[view] < 0.3  # the detector's corner noise, no model error
    assert solved.n_belt_frames >= 20
    assert solved.belt_plane_rms_mm < 1.0


def test_calibrated_rig_projects_like_the_true_one(cams, solved):
    """A point anywhere in the walking volume lands within 1 px of where the true camera puts it."""
    rng = np.random.default_rng(5)
    pts = rng.uniform([-0.5, -0.4, 0.0], [0.5, 0.4, 1.9], (500, 3))
    for view, truth in cams.items():
        err = np.linalg.norm(solved.cameras[view].project(pts) - truth.project(pts), axis=1)
        assert np.percentile(err, 95) < 1.0, view


def test_a_camera_seen_with_no_other_cannot_be_placed(cams, detections):
    only_closeups = [d for d in detections if d.view != "left" or d.index < 10_000]
    lonely = [d for d in only_closeups if d.view != "left"] + [d for d in detections if d.view == "left" and d.index < 10_000]
    with pytest.raises(CalibrationError, match=r"\['left'\] never saw the board"):
        RigCalibrator(SPEC, {k: (c.width_px, c.height_px) for k, c in cams.items()}).solve(lonely)
    with pytest.raises(CalibrationError, match="too few board frames"):
        RigCalibrator(SPEC, {k: (c.width_px, c.height_px) for k, c in cams.items()}).solve(detections[:3])


def test_camera_moved_by_2_cm_is_detected(cams):
    rng = np.random.default_rng(1)
    cam = cams["left"]
    wall = backdrop(cam, rng)
    pose = belt_poses(SPEC, 4, rng)[1]
    still = lambda c: render_scene(c, [wall, board_plane(SPEC, c, pose)], rng)  # noqa: E731
    reference = still(cam)
    detector = CameraMoveDetector()
    same = detector.check(reference, still(cam))
    assert same.status == "ok" and same.shift_px < 0.2
    for d in ([0.02, 0, 0], [0, 0.02, 0], [0, 0, 0.02]):  # along, toward the belt, up
        moved = dataclasses.replace(cam, t=cam.t - cam.R @ np.array(d), _table=None)
        check = detector.check(reference, still(moved))
        assert check.moved and check.shift_px > 1.0, (d, check)
    blank = np.full_like(reference, 100)
    assert detector.check(blank, reference).status == "unknown"


def test_printable_board_has_the_stated_size(tmp_path):
    png = write_png(SPEC, tmp_path / "b.png", dpi=200)
    img = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    assert img.shape == (round(0.44 / 0.0254 * 200), round(0.64 / 0.0254 * 200))
    det = BoardDetector(SPEC).detect(cv2.copyMakeBorder(img, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255), "x", 0)
    assert det is not None and len(det.ids) == (SPEC.squares_x - 1) * (SPEC.squares_y - 1)
    pdf = write_pdf(SPEC, tmp_path / "b.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/MediaBox [0 0 1814.173 1247.244]" in pdf  # 640 x 440 mm in points


def test_cli_detect_and_solve_report_bad_input(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "rig.cli", "calibrate", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    r = run("board", "--out", str(tmp_path / "b.svg"))
    assert r.returncode == 2 and "written as .pdf or .png" in r.stderr
    r = run("board", "--out", str(tmp_path / "b.pdf"), "--square-mm", "50", "--marker-mm", "60")
    assert r.returncode == 2 and "marker_m must be" in r.stderr
    (tmp_path / "frames").mkdir()
    r = run("detect", "--view", "left", "--frames", str(tmp_path / "frames"), "--out", str(tmp_path / "d.json"))
    assert r.returncode == 2 and "no <trigger index>.png frames" in r.stderr
    (tmp_path / "bad.json").write_text(json.dumps({"format": "nope"}))
    r = run("solve", str(tmp_path / "bad.json"))
    assert r.returncode == 2 and "not a gaitrig-board-detections/1 file" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_end_to_end_on_simulated_footage(tmp_path):
    """simulate -> detect per node -> solve, as a technician runs it; fewer frames than the
    fixture (16 close-ups, 40 belt poses), so the bound is the coarse one a user checks."""
    run = lambda *a: subprocess.run([sys.executable, "-m", "rig.cli", "calibrate", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=600)
    out = tmp_path / "sim"
    r = run("simulate", "--out", str(out), "--closeups", "16", "--belt-poses", "40", "--seed", "3")
    assert r.returncode == 0, r.stderr
    for v in ("left", "right", "rear", "front"):
        r = run("detect", "--view", v, "--frames", str(out / v), "--out", str(out / f"{v}.json"),
                "--still-dir", str(tmp_path / "state" / v))  # never a real node's state directory
        assert r.returncode == 0, r.stderr
    r = run("solve", *[str(out / f"{v}.json") for v in ("left", "right", "rear", "front")],
            "--out", str(out / "cameras.json"))
    assert r.returncode == 0, r.stderr
    assert "reprojection" in r.stdout and "belt plane" in r.stdout
    assert f"calibration written to {out / 'cameras.json'}\n" in r.stdout
    assert "the coordinator reads analysis.calibration (default /var/lib/gaitrig/calibration.json)" in r.stdout
    r = run("solve", *[str(out / f"{v}.json") for v in ("left", "right", "rear", "front")],
            "--out", str(tmp_path / "absent" / "calibration.json"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert (f"cannot write the calibration to {tmp_path / 'absent' / 'calibration.json'} (No such file or directory)"
            in r.stderr)
    est, truth = load_cameras(out / "cameras.json"), load_cameras(out / "truth.json")
    for v in truth:
        assert np.linalg.norm(est[v].position_m - truth[v].position_m) < 0.01
        assert est[v].reprojection_error_px < 0.3


def test_node_self_test_reports_a_moved_camera(cams, tmp_path):
    from rig.node.diagnostics import aim_check
    rng = np.random.default_rng(2)
    cam = cams["rear"]
    wall = backdrop(cam, rng)
    pose = belt_poses(SPEC, 4, rng)[0]
    reference = render_scene(cam, [wall, board_plane(SPEC, cam, pose)], rng)
    assert aim_check(reference, tmp_path).ok  # no still stored yet: says so, not a failure
    assert "no calibration still" in aim_check(reference, tmp_path).detail
    cv2.imwrite(str(tmp_path / "calibration_still.png"), reference)
    same = aim_check(render_scene(cam, [wall, board_plane(SPEC, cam, pose)], rng), tmp_path)
    assert same.ok and "calibration still valid" in same.detail
    bumped = dataclasses.replace(cam, t=cam.t - cam.R @ np.array([0.0, 0.02, 0.0]), _table=None)
    moved = aim_check(render_scene(bumped, [wall, board_plane(SPEC, bumped, pose)], rng), tmp_path)
    assert not moved.ok and "recalibrate" in moved.detail
    assert aim_check(None, tmp_path, simulated=True).ok


def test_calibration_saves_the_still_that_diag_compares(cams, tmp_path):
    """``calibrate detect`` keeps the first frame (filmed before the board comes in) as the
    node's reference still; the node's self-test ("aim", what ``gaitrig diag selftest``
    runs) then passes on the unmoved camera and fails on one moved by 2 cm; footage that
    starts with the board saves none."""
    from rig.node.diagnostics import aim_check
    rng = np.random.default_rng(5)
    cam = cams["front"]
    wall = backdrop(cam, rng)
    frames = tmp_path / "frames"
    frames.mkdir()
    poses = closeup_poses(SPEC, cam, 2, rng, 10)
    cv2.imwrite(str(frames / "000001.png"), render_scene(cam, [wall], rng))  # the room before the board
    for k, pose in enumerate(poses):
        cv2.imwrite(str(frames / f"{pose.index:06d}.png"), render_scene(cam, [wall, board_plane(SPEC, cam, pose)], rng))
    state = tmp_path / "state"
    r = subprocess.run([sys.executable, "-m", "rig.cli", "calibrate", "detect", "--view", "front", "--frames",
                        str(frames), "--out", str(tmp_path / "front.json"), "--still-dir", str(state)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "reference still for the camera-moved check: 000001.png" in r.stdout
    assert (state / "calibration_still.png").is_file()
    same = aim_check(render_scene(cam, [wall], rng), state)
    assert same.ok and "calibration still valid" in same.detail
    bumped = dataclasses.replace(cam, t=cam.t - cam.R @ np.array([0.02, 0.0, 0.0]), _table=None)
    moved = aim_check(render_scene(bumped, [wall], rng), state)
    assert not moved.ok and "recalibrate" in moved.detail
    (frames / "000001.png").unlink()
    r = subprocess.run([sys.executable, "-m", "rig.cli", "calibrate", "detect", "--view", "front", "--frames",
                        str(frames), "--out", str(tmp_path / "front.json"), "--still-dir", str(tmp_path / "s2")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "board is in the first frame" in r.stderr
    assert not (tmp_path / "s2" / "calibration_still.png").exists()
