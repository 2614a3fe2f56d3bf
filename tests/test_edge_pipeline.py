"""The pose pipeline on real video against the real reference (mediapipe 0.10.14's
``solutions.pose``), and ``gaitrig infer`` end to end."""
from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest
from conftest import assets_or_skip

from edge_models import cli as edge_cli
from edge_models import fetch as fetching
from edge_models.pose import BeltRoi, PosePipeline
from edge_models.pose.person_select import PatientSelector
from edge_models.registry import MODELS, POSE_LANDMARK_FULL, SAMPLES
from edge_models.video import read_frames
from rig.keypoints import FORMAT, read_track

MAX_MEDIAN_TORSO_FRACTION = 0.02
pytestmark = pytest.mark.filterwarnings("ignore:SymbolDatabase.GetPrototype:UserWarning")


@pytest.fixture(scope="module")
def cache():
    return assets_or_skip(MODELS + SAMPLES)


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gaitrig")
    edge_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def reference_landmarks(frames: list[np.ndarray]) -> list[np.ndarray | None]:
    """mediapipe.solutions.pose on the same frames, in pixels (the brief's reference)."""
    import mediapipe as mp
    h, w = frames[0].shape[:2]
    out = []
    with mp.solutions.pose.Pose(model_complexity=1, smooth_landmarks=False) as pose:
        for frame in frames:
            res = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            out.append(None if res.pose_landmarks is None else np.array(
                [[p.x * w, p.y * h] for p in res.pose_landmarks.landmark]))
    return out


def torso_length_px(lm: np.ndarray) -> float:
    shoulders = (lm[11, :2] + lm[12, :2]) / 2
    hips = (lm[23, :2] + lm[24, :2]) / 2
    return float(np.linalg.norm(shoulders - hips))


@pytest.mark.parametrize("sample,view", [("cam01.mp4", "left"), ("cam02.mp4", "right"),
                                         ("cam03.mp4", "front"), ("cam04.mp4", "rear")])
def test_infer_writes_keypoints_that_match_the_reference(cache, tmp_path, sample, view):
    video = fetching.sample_path(sample)
    out = tmp_path / f"{sample}.jsonl"
    assert run_cli(["infer", str(video), "--view", view, "--out", str(out)]) == 0

    track = read_track(out)
    frames = read_frames(video)
    h, w = frames[0].shape[:2]
    assert (track.header.format, track.header.view, track.header.fps) == (FORMAT, view, 60.0)
    assert (track.header.width, track.header.height) == (w, h)
    assert track.header.facing in (("left", "right") if view in ("left", "right") else (None,))
    assert track.index.tolist() == list(range(len(frames))) == list(range(100))
    assert np.allclose(track.t_s, track.index / 60.0, atol=1e-6)
    assert track.found.all(), "the person must be found in every frame"

    reference = reference_landmarks(frames)
    assert all(r is not None for r in reference)
    distances = [np.linalg.norm(ours[:, :2] - ref, axis=1) / torso_length_px(ref)
                 for ours, ref in zip(track.lm, reference)]
    median = float(np.median(np.concatenate(distances)))
    assert median <= MAX_MEDIAN_TORSO_FRACTION, f"median distance {100 * median:.2f} % of torso"
    vis = track.lm[:, :, 3]
    assert ((vis >= 0) & (vis <= 1)).all()


def twins(frame: np.ndarray) -> np.ndarray:
    """Two people: the patient and a same-sized copy beside them (the 'clinician')."""
    return np.concatenate([frame, frame], axis=1)


@pytest.fixture(scope="module")
def cam01_frames(cache):
    return read_frames(fetching.sample_path("cam01.mp4"), limit=30)


def hip_x(lm: np.ndarray | None) -> float | None:
    return None if lm is None else float(lm[23:25, 0].mean())


def test_two_people_follows_the_one_on_the_belt_and_never_jumps(cam01_frames):
    w = cam01_frames[0].shape[1]
    left = PosePipeline(belt_roi=BeltRoi(0.0, 0.3, 0.5, 1.0))
    right = PosePipeline(belt_roi=BeltRoi(0.5, 0.3, 1.0, 1.0))
    for i, frame in enumerate(cam01_frames):
        scene = twins(frame)
        if 10 <= i < 20:
            scene[:, :w] = 0  # the left person steps off: the other must not be taken instead
        x_left, x_right = hip_x(left.process(scene)), hip_x(right.process(scene))
        if 10 <= i < 20:
            assert x_left is None, f"frame {i}: jumped to the person off the belt"
        else:
            assert x_left is not None and x_left < w, f"frame {i}: {x_left}"
        assert x_right is not None and x_right > w, f"frame {i}: {x_right}"
    assert right.stats.detector_runs == 1  # tracked throughout
    assert left.stats.found == 20 and left.stats.tracks_lost == 1


def test_without_a_belt_roi_the_patient_model_refuses_the_other_person_until_it_forgets(cam01_frames):
    """No belt ROI: losing the patient does not hand the track to their twin a body's width
    away ("patient not visible" instead); once the model is forgotten, anyone is taken."""
    w = cam01_frames[0].shape[1]
    pipe = PosePipeline(selector=PatientSelector(forget_after=3))
    xs = []
    for i, frame in enumerate(cam01_frames[:16]):
        scene = twins(frame)
        if i >= 10:
            scene[:, :w] = 0
        xs.append(hip_x(pipe.process(scene)))
    assert all(x < w for x in xs[:10])
    assert xs[10:13] == [None, None, None]
    assert all(x > w for x in xs[13:])
    assert pipe.stats.patient_not_visible == 3 and pipe.selector.stats.relearned == 1


def test_a_person_doing_jumping_jacks_facing_the_camera_is_followed_as_the_reference_does(cache):
    """The Sports2D demo's first person, facing the camera, jumping and waving: the reference
    finds them on 161 of 165 frames. The patient's size is learned from the first fits'
    median, not the first fit alone (224 px as they enter, 120-130 px after), which had
    every later fit refused as "not the patient's size" (6 of 165 frames found)."""
    from edge_models.registry import SPORTS2D_WALKER
    frames = read_frames(fetching.sample_path(SPORTS2D_WALKER), 165)
    ref = reference_landmarks(frames)
    pipe = PosePipeline()
    ours = [pipe.process(f) for f in frames]
    both = [(o, r) for o, r in zip(ours, ref) if o is not None and r is not None]
    assert sum(r is not None for r in ref) == 161
    assert len(both) >= 150 and all(r is not None for o, r in zip(ours, ref) if o is not None)
    per_frame = [np.median(np.linalg.norm(o[:, :2] - r, axis=1)) / torso_length_px(r) for o, r in both]
    assert np.median(per_frame) <= MAX_MEDIAN_TORSO_FRACTION
    assert pipe.selector.stats.rejected["size"] <= 5


def test_nobody_in_view_gives_none(cache):
    pipe = PosePipeline()
    noise = np.random.default_rng(7).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    assert pipe.process(noise) is None
    assert pipe.process(np.zeros((480, 640, 3), np.uint8)) is None
    assert (pipe.stats.frames, pipe.stats.found, pipe.stats.detector_runs) == (2, 0, 2)
    with pytest.raises(ValueError, match="uint8 BGR"):
        pipe.process(np.zeros((480, 640), np.uint8))


def test_missing_model_is_a_one_line_error_naming_fetch(tmp_path, monkeypatch, capsys, cache):
    monkeypatch.setenv("GAITRIG_CACHE_DIR", str(tmp_path))
    video = cache / "samples" / "cam01.mp4"
    rc = run_cli(["infer", str(video), "--view", "left", "--out", str(tmp_path / "x.jsonl")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "gaitrig models fetch" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "x.jsonl").exists()


def test_corrupt_model_is_a_hash_error(tmp_path, monkeypatch, capsys, cache):
    models = tmp_path / "models"
    models.mkdir()
    for name in MODELS:
        data = (cache / "models" / name).read_bytes()
        if name == POSE_LANDMARK_FULL:
            data = data[:-1000]  # truncated download
        (models / name).write_bytes(data)
    monkeypatch.setenv("GAITRIG_CACHE_DIR", str(tmp_path))
    rc = run_cli(["infer", str(cache / "samples" / "cam01.mp4"), "--view", "left",
                  "--out", str(tmp_path / "x.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and "SHA-256 mismatch" in err and POSE_LANDMARK_FULL in err


def test_undecodable_video_is_a_one_line_error(tmp_path, capsys, cache):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    rc = run_cli(["infer", str(bad), "--view", "rear", "--out", str(tmp_path / "x.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and err.startswith("gaitrig: error:") and "broken.mp4" in err
    rc = run_cli(["infer", str(tmp_path / "absent.mp4"), "--view", "rear",
                  "--out", str(tmp_path / "x.jsonl")])
    assert rc == 2 and "no such video" in capsys.readouterr().err


def test_side_view_without_anybody_needs_explicit_facing(tmp_path, capsys, cache):
    blank = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    for _ in range(3):
        writer.write(np.zeros((240, 320, 3), np.uint8))
    writer.release()
    out = tmp_path / "e.jsonl"
    assert run_cli(["infer", str(blank), "--view", "left", "--out", str(out)]) == 2
    assert "--facing" in capsys.readouterr().err
    assert run_cli(["infer", str(blank), "--view", "left", "--facing", "left", "--out", str(out)]) == 0
    track = read_track(out)
    assert track.header.facing == "left" and not track.found.any() and len(track.index) == 3
