"""Review video on the camera node, against its real parts: the clip store on disk, the
recorder's thread and bounds, the clip server over real HTTP, picamera2's encoder path
through the stand-in with picamera2's API, and the event list the player jumps to."""
from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from standins import picamera2 as standin

from rig.node.camera import CapturedFrame, Picamera2Camera
from rig.node.trigger import TriggerIndexer
from rig.ops.still import render_skeleton
from rig.sim.walker import SimulatedWalker, WalkerParams
from rig.video import protocol
from rig.video.client import ClipClient, NodeOffline, NodeRefused
from rig.video.recorder import EncodedPairing, VideoRecorder
from rig.video.retention import DAY_S, to_delete
from rig.video.server import ClipServer
from rig.video.store import ClipMeta, ClipStore, StoredClip
from rig.web.review import review_events

SIZE = (1456, 1088)


def jpeg(level: int, size=(64, 48)) -> bytes:
    return cv2.imencode(".jpg", np.full((size[1], size[0], 3), level, np.uint8))[1].tobytes()


def level_of(data: bytes) -> float:
    return float(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE).mean())


def meta(sid: int, view: str = "rear") -> ClipMeta:
    return ClipMeta(sid, view, 60.0, 64, 48, *SIZE, 0.0)


def recorder(tmp_path: Path, picture=None, max_bytes: int = 10**9, queue_frames: int = 120, view="rear",
             queue_max_bytes: int | None = None):
    picture = picture if picture is not None else (lambda f: f.image)
    bound = {} if queue_max_bytes is None else {"queue_max_bytes": queue_max_bytes}
    return VideoRecorder(ClipStore(tmp_path, view), picture, lambda: SIZE, 728, 80, max_bytes, 30.0, queue_frames,
                         **bound)


# --- the store ------------------------------------------------------------------------------------
def test_store_reads_any_range_by_trigger_index_first_of_a_repeat_kept(tmp_path):
    store = ClipStore(tmp_path, "rear")
    w = store.writer(meta(3))
    for index, level in ((0, 10), (1, 20), (3, 40), (3, 99), (4, 50), (2, 30)):  # 2 arrives late; 3 twice
        w.add(index, jpeg(level))
    w.close()
    r = store.reader(3)
    assert list(r.indices) == [0, 1, 2, 3, 4]
    got = [(i, round(level_of(d))) for i, d in r.frames(1, 3)]
    assert [i for i, _ in got] == [1, 2, 3]
    assert all(abs(lv - want) <= 2 for (_, lv), want in zip(got, (20, 30, 40)))
    assert list(r.frames(5, 9)) == [] and r.summary()["frames"] == 5
    assert store.reader(4) is None  # never recorded


def test_a_frame_whose_bytes_never_reached_the_disk_is_not_served(tmp_path):
    store = ClipStore(tmp_path, "rear")
    w = store.writer(meta(1))
    for i in range(3):
        w.add(i, jpeg(50))
    w.close()
    folder = store.session_folder(1)
    frames = folder / "frames.mjpg"
    frames.write_bytes(frames.read_bytes()[:-10])  # power cut inside the last picture
    with open(folder / "index.bin", "ab") as f:
        f.write(b"\x01\x02")  # and half an index record
    assert list(store.reader(1).indices) == [0, 1]


# --- retention ------------------------------------------------------------------------------------
def test_retention_forgets_old_sessions_then_the_oldest_over_the_size_bound():
    now = 100 * DAY_S
    clips = [StoredClip(1, 500, now - 40 * DAY_S), StoredClip(2, 400, now - 10 * DAY_S),
             StoredClip(3, 400, now - 5 * DAY_S), StoredClip(4, 400, now - 1)]
    assert to_delete(clips, max_bytes=10_000, keep_days=30, now_t=now) == [1]
    assert to_delete(clips, max_bytes=900, keep_days=30, now_t=now) == [1, 2]
    assert to_delete(clips, max_bytes=100, keep_days=30, now_t=now, recording=4) == [1, 2, 3]
    assert to_delete(clips, max_bytes=100, keep_days=30, now_t=now + 60 * DAY_S, recording=4) == [1, 2, 3]


def test_recorder_prunes_on_disk_at_a_sessions_start_but_never_the_one_recording(tmp_path):
    rec = recorder(tmp_path, max_bytes=3000)
    for sid in (1, 2):
        w = rec.store.writer(meta(sid))
        w.add(0, b"x" * 2000)
        w.close()
    rec.begin(3, 60.0)
    assert [c.session_id for c in rec.store.stored()] == [3, 2]  # 1 was the oldest, over the bound
    assert rec.store.reader(1) is None and rec.stats.deleted_sessions == 1
    old = time.time() - 31 * DAY_S
    for f in rec.store.session_folder(2).iterdir():
        import os
        os.utime(f, (old, old))
    assert rec.prune(recording=3) == [2]


def test_a_session_erased_while_the_store_is_listed_is_not_stored_and_nothing_crashes(tmp_path, monkeypatch):
    """The node erases a session (its patient was erased) while the recorder prunes: the
    folder goes between the listing and its stat. It was a crash of the node's start."""
    store = ClipStore(tmp_path, "rear")
    for sid in (1, 2):
        w = store.writer(meta(sid))
        w.add(0, b"x" * 100)
        w.close()
    real_is_dir, gone = Path.is_dir, store.session_folder(1)

    def is_dir_then_erased(path: Path) -> bool:
        answer = real_is_dir(path)
        if path == gone and answer:
            shutil.rmtree(gone)  # the erasure lands right after the check
        return answer

    monkeypatch.setattr(Path, "is_dir", is_dir_then_erased)
    assert [c.session_id for c in store.stored()] == [2]


# --- the recorder ---------------------------------------------------------------------------------
def frame_of(level: int, t: float = 0.0) -> CapturedFrame:
    return CapturedFrame(t, np.full((1088, 1456, 3), level, np.uint8), mono=t)


def test_recorder_holds_one_full_camera_frame_by_default(tmp_path):
    """A recorder that has not caught up holds one camera frame, not two: the next is counted
    as not kept (its ~5 MB stay out of the node's RSS); once it encoded, the next fits."""
    rec = recorder(tmp_path)
    rec.begin(5, 60.0)
    rec.put(5, 0, frame_of(100))
    rec.put(5, 1, frame_of(110))
    assert rec.stats.not_kept == 1
    rec.drain()
    rec.put(5, 2, frame_of(120))
    rec.drain()
    assert sorted(dict(rec.store.reader(5).frames(0, 10))) == [0, 2]
    assert (rec.stats.recorded, rec.stats.not_kept) == (2, 1)


def test_recorder_scales_encodes_and_keeps_only_the_recording_session(tmp_path):
    rec = recorder(tmp_path, queue_max_bytes=3 * 1456 * 1088 * 3)  # room for all three
    rec.begin(5, 60.0)
    rec.put(5, 0, frame_of(100))
    rec.put(4, 1, frame_of(100))  # an older session's straggler
    rec.put(5, 2, frame_of(200))
    rec.drain()
    r = rec.store.reader(5)
    assert (r.meta.width, r.meta.height, r.meta.source_width) == (728, 544, 1456)
    frames = dict(r.frames(0, 10))
    assert sorted(frames) == [0, 2]
    image = cv2.imdecode(np.frombuffer(frames[2], np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (544, 728, 3) and abs(image.mean() - 200) < 2
    assert (rec.stats.recorded, rec.stats.not_kept) == (2, 1)


def test_a_full_queue_or_a_session_over_the_bound_loses_pictures_counted_never_blocks(tmp_path):
    rec = recorder(tmp_path, queue_frames=3, queue_max_bytes=10 * 1456 * 1088 * 3)  # the count bound first
    rec.begin(1, 60.0)
    t0 = time.perf_counter()
    for i in range(10):
        rec.put(1, i, frame_of(50))
    assert time.perf_counter() - t0 < 0.5  # capture never waits for the encoder
    rec.drain()
    assert (rec.stats.recorded, rec.stats.not_kept) == (3, 7)
    by_bytes = VideoRecorder(ClipStore(tmp_path / "c", "rear"), lambda f: f.image, lambda: SIZE, 728, 80, 10**9,
                             30.0, queue_frames=100, queue_max_bytes=3 * 1456 * 1088 * 3)
    by_bytes.begin(1, 60.0)
    for i in range(5):  # full camera frames: megabytes each, bounded by bytes long before 100 frames
        by_bytes.put(1, i, frame_of(50))
    by_bytes.drain()
    assert (by_bytes.stats.recorded, by_bytes.stats.not_kept) == (3, 2)
    small = recorder(tmp_path / "b", max_bytes=1)
    small.begin(1, 60.0)
    for i in range(3):
        small.put(1, i, frame_of(50))
    small.drain()
    assert (small.stats.recorded, small.stats.not_kept) == (1, 2)


def test_the_recorders_thread_runs_at_the_lowest_priority_and_the_nodes_other_threads_do_not(tmp_path):
    """Review video must not take CPU from keypoints: its thread (only) gets nice 19."""
    import os
    import threading
    rec = recorder(tmp_path)
    stop = threading.Event()
    thread = threading.Thread(target=rec.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while os.getpriority(os.PRIO_PROCESS, thread.native_id) != 19 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.getpriority(os.PRIO_PROCESS, thread.native_id) == 19
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == os.getpriority(os.PRIO_PROCESS, 0) < 19
    finally:
        stop.set()
        thread.join(5)


def test_pairing_matches_encoder_output_to_trigger_indices_in_either_order():
    p = EncodedPairing(window=4)
    assert p.jpeg(1.0000, b"a") is None
    assert p.index(1.0002, 7, 10) == (7, 10, b"a")  # JPEG first
    assert p.index(2.0, 7, 11) is None
    assert p.jpeg(2.003, b"b") is None  # 3 ms away: another frame
    assert p.jpeg(1.9999, b"c") == (7, 11, b"c")  # index first
    for k in range(10):
        p.jpeg(10.0 + k, b"old")
    assert p.index(10.0, 7, 12) is None  # pushed out of the bounded window


def test_the_simulated_node_draws_its_walker_into_real_frames(tmp_path):
    from rig.config import NodeConfig
    from rig.node.cli import walker_picture
    walker = SimulatedWalker(WalkerParams(), fps=60.0, seed=0)
    lm = walker.landmarks("left", np.arange(40))
    rec = recorder(tmp_path, picture=walker_picture(NodeConfig(view="left")), view="left")
    rec.begin(1, 60.0)
    for i in (0, 20):
        rec.put(1, i, CapturedFrame(i / 60, None, lm[i], i / 60))
    rec.drain()
    frames = dict(rec.store.reader(1).frames(0, 39))
    for i in (0, 20):
        got = cv2.imdecode(np.frombuffer(frames[i], np.uint8), cv2.IMREAD_COLOR).astype(float)
        same = np.abs(got - render_skeleton(lm[i], *SIZE, 0.5)).mean()
        other = np.abs(got - render_skeleton(lm[20 - i], *SIZE, 0.5)).mean()
        assert same < 1.5 and other > 2 * same, (i, same, other)  # the walker at that very pulse
        assert (got[:, :, 0] > 150).sum() > 200  # bones drawn: not an empty grey frame


# --- picamera2's encoder path (stand-in with its API) ----------------------------------------------
def test_picamera2_mjpeg_encoder_pictures_land_at_their_trigger_index(tmp_path, monkeypatch):
    mode = tmp_path / "trigger_mode"
    mode.write_text("1\n")
    start_ns = time.monotonic_ns() + 50_000_000
    period_ns = 16_666_667
    missed = {3, 7}
    schedule = [start_ns + k * period_ns for k in range(20) if k not in missed]
    monkeypatch.setattr(standin.Picamera2, "schedule_ns", schedule)
    rec = VideoRecorder(ClipStore(tmp_path, "left"), None, lambda: SIZE, 728, 80, 10**9, 30.0)
    cam = Picamera2Camera(*SIZE, 0, 4.0, mode, factory=standin.Picamera2,
                          encoder_api=(standin.MJPEGEncoder, standin.Output))
    cam.record_to(rec)
    cam.open()
    config = standin.Picamera2.instances[-1].config
    assert config["lores"] == {"size": (728, 544), "format": "YUV420"} and config["encode"] == "lores"
    indexer = TriggerIndexer(start_ns / 1e9, 60.0)
    rec.begin(9, 60.0)
    got = 0
    while got < len(schedule):
        frame = cam.read(1.0)
        assert frame is not None
        rec.put(9, indexer.index(frame.mono), frame)
        got += 1
    cam.close()
    rec.drain()
    frames = dict(rec.store.reader(9).frames(0, 100))
    assert sorted(frames) == [k for k in range(20) if k not in missed]
    for k, data in frames.items():
        assert abs(level_of(data) - standin.grey_level(start_ns + k * period_ns)) < 3, k
    assert rec.store.reader(9).meta.width == 728
    assert standin.Picamera2.instances[-1].encoder is None  # stopped with the camera


# --- the clip server and its client ----------------------------------------------------------------
@pytest.fixture
def served(tmp_path):
    store = ClipStore(tmp_path, "rear")
    w = store.writer(meta(12))
    for i in range(0, 50):
        if i != 25:  # a missed trigger
            w.add(i, jpeg(i * 4))
    w.close()
    server = ClipServer(store, "127.0.0.1", 0, token="s3cret")
    server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.close()


def get(url: str, token: str | None = "s3cret") -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_clip_server_streams_a_range_and_says_what_it_holds(served):
    code, body = get(served + "/v1/clips")
    assert code == 200 and json.loads(body)["clips"][0]["frames"] == 49
    info = json.loads(get(served + "/v1/clips/12")[1])
    assert (info["first_index"], info["last_index"], info["source_width"], info["fps"]) == (0, 49, 1456, 60.0)
    code, body = get(served + "/v1/clips/12/frames?from=20&to=30")
    frames = list(protocol.decode_stream(body))
    assert code == 200 and [i for i, _ in frames] == [20, 21, 22, 23, 24, 26, 27, 28, 29, 30]
    assert abs(level_of(frames[0][1]) - 80) < 3


@pytest.mark.parametrize("path, code, says", [
    ("/v1/clips/13", 404, "keeps no video of session 13"),
    ("/v1/clips/12/frames?from=9&to=3", 400, "from ≤ to"),
    ("/v1/clips/12/frames?from=a&to=3", 400, "integers"),
    (f"/v1/clips/12/frames?from=0&to={protocol.MAX_CLIP_FRAMES}", 400, "at most"),
    ("/v1/clips/12/other", 404, "no such request"), ("/etc/passwd", 404, "no such request")])
def test_clip_server_refuses_bad_requests_with_a_reason(served, path, code, says):
    got, body = get(served + path)
    assert got == code and says in json.loads(body)["error"]


def test_clip_server_wants_its_token_when_configured(served):
    assert get(served + "/v1/clips", token=None)[0] == 401
    assert get(served + "/v1/clips", token="guess")[0] == 401


def test_client_says_a_node_that_is_off_is_offline_and_passes_refusals_on(served):
    from rig.sim.broker import free_port
    off = ClipClient(f"http://127.0.0.1:{free_port()}", "front", timeout_s=2.0)
    with pytest.raises(NodeOffline, match="camera node front is offline"):
        off.clip_info(12)
    with pytest.raises(NodeRefused, match="keeps no video of session 99") as e:
        ClipClient(served, "rear", 2.0, "s3cret").clip_info(99)
    assert e.value.status == 404
    data = b"".join(ClipClient(served, "rear", 2.0, "s3cret").frames(12, 0, 4))
    assert [i for i, _ in protocol.decode_stream(data)] == [0, 1, 2, 3, 4]


def test_a_node_that_never_answers_is_offline_after_the_timeout():
    import socket
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts, never answers
    try:
        t0 = time.monotonic()
        with pytest.raises(NodeOffline):
            ClipClient(f"http://127.0.0.1:{silent.getsockname()[1]}", "rear", 0.5).clip_info(1)
        assert time.monotonic() - t0 < 3
    finally:
        silent.close()


def test_a_torn_stream_is_an_error_not_a_crash():
    good = protocol.MAGIC + protocol.encode_frame(3, b"abc")
    assert list(protocol.decode_stream(good)) == [(3, b"abc")]
    for bad in (b"XXXX", good[:-1], good + b"\x01"):
        with pytest.raises(protocol.StreamError):
            list(protocol.decode_stream(bad))


# --- what the player jumps to ----------------------------------------------------------------------
def test_review_events_number_each_foots_events_and_place_mid_stance_between_strike_and_toe_off():
    report = {"events": {"left": {"heel_strike_s": [1.0, 2.1], "toe_off_s": [0.4, 1.6, 2.7]},
                         "right": {"heel_strike_s": [1.55, float("nan")], "toe_off_s": []}}}
    events = review_events(report, 60.0)
    assert [(e.label, e.index) for e in events] == [
        ("left toe off 1", 24), ("left heel strike 1", 60), ("left mid-stance 1", 78),
        ("right heel strike 1", 93), ("left toe off 2", 96), ("left heel strike 2", 126),
        ("left mid-stance 2", 144), ("left toe off 3", 162)]
    assert review_events(None, 60.0) == [] and review_events({"events": {"left": {"heel_strike_s": "x"}}}, 60) == []


def test_walker_poses_wait_for_drawing_bounded_by_bytes_not_by_count(tmp_path):
    """The simulated node queues the walker's pose (a few kB), not a picture: a burst longer
    than the picture bound is drawn after the fact, every frame kept."""
    pose = np.zeros((33, 4))
    drawn = VideoRecorder(ClipStore(tmp_path, "rear"), lambda f: np.full((544, 728, 3), 90, np.uint8),
                          lambda: SIZE, 728, 80, 10**9, 30.0, queue_frames=3, queue_max_bytes=50 * 1024)
    drawn.begin(1, 60.0)
    for i in range(60):
        drawn.put(1, i, CapturedFrame(float(i), None, landmarks=pose))
    drawn.drain()
    assert (drawn.stats.recorded, drawn.stats.not_kept) == (50, 10)  # 50 kB of 1 kB poses, then counted
