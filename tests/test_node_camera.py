"""The camera node's capture side: the picamera2 backend against a stand-in with
picamera2's API, trigger indexing with missed triggers counted exactly, and the node
daemon's end-of-session report over a real broker."""
from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import NodeEnd, SessionState, TriggerState, decode
from rig.config import CameraSettings, NodeConfig
from rig.node.camera import CameraError, Picamera2Camera
from rig.node.cli import NodeParts
from rig.node.daemon import NodeDaemon
from rig.node.trigger import TriggerIndexer
import standins.picamera2 as standin
from standins.picamera2 import Picamera2, grey_level

RATE_HZ = 60.0


@pytest.fixture
def trigger_mode(tmp_path):
    path = tmp_path / "trigger_mode"
    path.write_text("1\n")
    return path


def train(n: int, skip: set[int], lead_s: float = 0.3) -> tuple[float, list[int]]:
    """Pulse 0 in ``lead_s``; returns its monotonic time and the frames' sensor timestamps."""
    first = time.monotonic() + lead_s
    return first, [int((first + k / RATE_HZ) * 1e9) for k in range(n) if k not in skip]


def camera(trigger_mode) -> Picamera2Camera:
    return Picamera2Camera(1456, 1088, 0, 4.0, trigger_mode, factory=Picamera2)


def test_external_trigger_mode_off_is_a_clear_error(trigger_mode):
    trigger_mode.write_text("0\n")
    with pytest.raises(CameraError, match="external trigger mode is off .* reads '0'.*gaitrig-camera-trigger"):
        camera(trigger_mode).open()


def test_missing_camera_is_a_clear_error(trigger_mode):
    with pytest.raises(CameraError, match="camera 3 failed to open"):
        Picamera2Camera(1456, 1088, 3, 4.0, trigger_mode, factory=Picamera2).open()


def test_configured_for_external_trigger_and_reads_sensor_timestamps(trigger_mode):
    _, schedule = train(5, set(), lead_s=0.05)
    Picamera2.schedule_ns = schedule
    cam = camera(trigger_mode)
    cam.open()
    std = Picamera2.instances[-1]
    assert std.config["main"] == {"size": (1456, 1088), "format": "RGB888"}
    assert std.controls["AeEnable"] is False and std.started
    unix_offset = time.time() - time.monotonic()
    frames = [cam.read(1.0) for _ in range(5)]
    assert [f.t for f in frames] == pytest.approx([ns / 1e9 + unix_offset for ns in schedule], abs=2e-3)
    assert frames[0].image.shape == (1088, 1456, 3)
    assert std.released == 5, "every libcamera request must be released"
    assert cam.read(0.05) is None  # no pulse: a timeout, not an error
    cam.close()


def test_each_frame_comes_with_the_lores_streams_y_plane_as_its_luma(trigger_mode):
    """The ISP's half-size YUV420 stream is the flow's image: its Y rows, without the
    stride's padding or the chroma rows, each the frame's own."""
    _, schedule = train(3, set(), lead_s=0.05)
    Picamera2.schedule_ns = schedule
    cam = camera(trigger_mode)
    assert cam.gives_luma
    cam.open()
    assert Picamera2.instances[-1].config["lores"] == {"size": (728, 544), "format": "YUV420"}
    frames = [cam.read(1.0) for _ in range(3)]
    cam.close()
    for frame, sensor_ns in zip(frames, schedule):
        assert frame.luma.shape == (544, 728) and frame.luma.flags.c_contiguous
        assert (frame.luma == grey_level(sensor_ns)).all()


def test_a_lores_buffer_of_the_wrong_shape_is_refused_and_the_frame_still_delivered(trigger_mode, monkeypatch,
                                                                                    caplog):
    _, schedule = train(2, set(), lead_s=0.05)
    Picamera2.schedule_ns = schedule
    main_array = standin.CompletedRequest.make_array
    monkeypatch.setattr(standin.CompletedRequest, "make_array", lambda self, name: (
        np.zeros((100, 728), np.uint8) if name == "lores" else main_array(self, name)))  # rows missing
    cam = camera(trigger_mode)
    cam.open()
    frames = [cam.read(1.0) for _ in range(2)]
    cam.close()
    assert all(f.luma is None and f.image.shape == (1088, 1456, 3) for f in frames)
    assert [r.message for r in caplog.records].count(
        "picamera2: lores stream came as uint8 (100, 728), not YUV420 728x816 rows: the optical flow reads the "
        "main stream") == 1


def test_review_video_of_another_size_takes_the_lores_stream_and_the_flow_reads_the_main_one(trigger_mode):
    _, schedule = train(1, set(), lead_s=0.05)
    Picamera2.schedule_ns = schedule
    cam = Picamera2Camera(1456, 1088, 0, 4.0, trigger_mode, factory=Picamera2,
                          encoder_api=(standin.MJPEGEncoder, standin.Output))
    cam.record_to(type("Recorder", (), {"picture_size": lambda self: (640, 478), "put_encoded": print})())
    assert not cam.gives_luma
    cam.open()
    assert Picamera2.instances[-1].config["lores"] == {"size": (640, 478), "format": "YUV420"}
    assert cam.read(1.0).luma is None
    cam.close()


def test_trigger_indexer_counts_missed_triggers_exactly():
    idx = TriggerIndexer(first_pulse_t=100.0, rate_hz=RATE_HZ)
    skip = {0, 7, 8, 30, 59}
    got = [idx.index(100.0 + k / RATE_HZ + 0.002) for k in range(60) if k not in skip]
    assert got == [k for k in range(60) if k not in skip]
    assert idx.finish(pulses_sent=62) == len(skip) + 2  # the last two pulses never came
    assert idx.index(100.0 + 10.5 / RATE_HZ) is None and idx.off_grid == 1


def test_trigger_indexer_keeps_a_half_hour_train_in_step_though_the_first_pulse_estimate_is_off():
    """Half an hour at 100 Hz on a controller clock 40 ppm fast: the pulses drift 72 ms (7
    periods) from the grid of the first pulse's time; indexed frame to frame, none is lost."""
    rate, n = 100.0, 180_000
    idx = TriggerIndexer(first_pulse_t=100.002, rate_hz=rate)  # clock sync off by 2 ms too
    got = [idx.index(100.0 + k / rate * (1 + 40e-6)) for k in range(n) if k % 1000 != 999]
    assert got == [k for k in range(n) if k % 1000 != 999]
    assert (idx.finish(n), idx.off_grid) == (n // 1000, 0)


class RunningNode:
    """A node daemon on the picamera2 stand-in, and a stand-in coordinator/bridge on MQTT."""

    def __init__(self, broker, trigger_mode, tmp_path, view: str, **settings):
        self.view = view
        self.cfg = NodeConfig(mqtt=broker.settings(), view=view, spool_dir=tmp_path,
                              camera=CameraSettings(backend="picamera2", trigger_mode_file=trigger_mode), **settings)
        self.node = NodeDaemon(self.cfg, NodeParts(camera(trigger_mode), lambda frame, index: None, "none", None))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.node.run, args=(self.stop,), daemon=True)
        self.thread.start()
        self.ctl = BusClient(broker.settings(), "test-coordinator").start()
        self.ends: queue.Queue = queue.Queue()
        self.ctl.on(topics.NODE_END, lambda m: self.ends.put(decode(NodeEnd, m.payload)))
        time.sleep(0.5)

    def train(self, session_id: int, first_mono: float, pulses_sent: int | None = None) -> None:
        """Session recording and the train armed at ``first_mono``; disarmed if pulses given."""
        first_unix = first_mono + (time.time() - time.monotonic())
        if pulses_sent is None:
            self.ctl.send(topics.SESSION_STATE, SessionState(t=time.time(), state="recording",
                                                             session_id=session_id, views=[self.view]))
        self.ctl.send(topics.TREADMILL_TRIGGER, TriggerState(
            t=time.time(), armed=pulses_sent is None, rate_hz=RATE_HZ, first_pulse_t=first_unix,
            pulses_sent=pulses_sent or 0))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.ctl.close()


@pytest.fixture
def running_node(broker, trigger_mode, tmp_path):
    nodes = []

    def start(view: str, **settings) -> RunningNode:
        nodes.append(RunningNode(broker, trigger_mode, tmp_path, view, **settings))
        return nodes[-1]
    yield start
    for n in nodes:
        n.close()


def test_node_reports_frames_against_pulses_with_exact_missed_count(running_node):
    n, skip = 90, {3, 4, 40, 88}
    first_mono, Picamera2.schedule_ns = train(n, skip, lead_s=1.5)
    rn = running_node("rear")
    rn.train(5, first_mono)
    time.sleep(first_mono + n / RATE_HZ - time.monotonic() + 0.2)
    rn.train(5, first_mono, pulses_sent=n)
    end = rn.ends.get(timeout=10)
    assert (end.session_id, end.view) == (5, "rear")
    assert end.missed_triggers == len(skip)
    assert end.captured == end.frames == n - len(skip)


def test_frames_before_the_train_is_known_wait_in_memory_up_to_the_byte_bound_then_on_disk_none_lost(
        running_node):
    """The first pulses can beat the session's and the train's reports to a busy node: those
    frames wait unindexed. With the bound B = 12 MB and 1456x1088 frames of s = 5.15 MB (the
    BGR image and its half-size luma plane), the first floor(B/s) = 2 wait in memory and
    every later one on disk as a crop (a 120 Hz camera whose reports come a second late no
    longer holds 120 frames, 570 MB, in RAM); once the train is known every one of them is
    indexed and published."""
    n, s = 120, 1456 * 1088 * 3 + 728 * 544
    first_mono, Picamera2.schedule_ns = train(n, set(), lead_s=1.0)
    rn = running_node("rear", backlog_max_mb=12.0, backlog_crops_max_mb=0.0)  # (no gray crops in memory)
    deadline = first_mono + 5.0
    while len(rn.node.early) < 30 and time.monotonic() < deadline:  # 30 frames in, no train known
        time.sleep(0.02)
    with rn.node.lock:
        early, held = rn.node.early, len(rn.node.early)
        assert held >= 30 and rn.node.train is None
        assert early.memory_bytes == (12_000_000 // s) * s == 2 * s
        assert early.spool.count == held - 2
    rn.train(5, first_mono)
    time.sleep(first_mono + n / RATE_HZ - time.monotonic() + 0.2)
    rn.train(5, first_mono, pulses_sent=n)
    end = rn.ends.get(timeout=20)
    assert (end.captured, end.frames, end.dropped, end.missed_triggers) == (n, n, 0, 0)
    # once indexed they join the train's backlog: memory as the estimator makes room, the rest on disk again
    assert 0 < end.spooled <= held
    assert len(rn.node.early) == 0 and not list((rn.cfg.spool_dir / "early-rear").iterdir())


def test_a_camera_that_stops_delivering_stops_the_watchdog(running_node):
    first_mono, Picamera2.schedule_ns = train(200, set(range(30, 200)), lead_s=1.0)  # no frame after pulse 30
    rn = running_node("left")
    rn.node.live.stall_after_s = 1.0
    rn.train(1, first_mono)
    time.sleep(first_mono + 30 / RATE_HZ - time.monotonic() + 0.2)
    assert rn.node.live(), "frames were arriving"
    time.sleep(1.5)
    assert not rn.node.live(), "the camera went silent mid-session but the watchdog would still be fed"


def test_a_camera_that_fails_to_open_is_reported_and_retried_while_the_node_keeps_running(
        running_node, trigger_mode):
    from rig.node.diagnostics import node_figures, node_problems
    trigger_mode.write_text("0\n")  # the privileged trigger-mode unit has not run yet
    Picamera2.schedule_ns = []
    rn = running_node("front")
    time.sleep(0.5)
    assert rn.thread.is_alive() and rn.node.bus.connected
    problems = node_problems(node_figures(rn.node), rn.cfg.backlog_max_mb, rn.cfg.spool_max_mb)
    assert "external trigger mode is off" in problems["camera_failed"]
    trigger_mode.write_text("1\n")
    deadline = time.monotonic() + 5
    while rn.node.stats.camera_error and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rn.node.stats.camera_error is None and rn.node._camera_open
