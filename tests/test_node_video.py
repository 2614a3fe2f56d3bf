"""A camera node running the real pose pipeline on real footage inside the rig: the video
backend follows the simulated trigger line at 120 Hz. At a Raspberry Pi 5's estimated speed
the node runs the landmark model on keyframes and tracks the frames between; slower still,
frames wait on disk as crops and are finished after the belt stops — the coordinator gets
every frame, each with the person found, until the disk bound, past which frames are
counted as lost."""
from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest

from conftest import assets_or_skip
from edge_models.fetch import sample_path
from firmware_bridge.bridge import Bridge
from firmware_bridge.simulator import TreadmillSimulator
from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import NodeEnd, NodeInfo, SessionSummary, decode, decode_keypoints
from rig.config import (BridgeConfig, CameraSettings, CoordinatorConfig, ModelSettings, NodeConfig, SerialSettings,
                        SessionSettings, StorageSettings)
from rig.coordinator.daemon import Coordinator
from rig.coordinator.export import session_tracks
from rig.coordinator.storage import Storage
from rig.node.camera import VideoCamera
from rig.node.cli import build
from rig.node.daemon import NodeDaemon
from rig.node.pacing import DEFAULT_MAX_INTERVAL


@pytest.fixture
def video():
    assets_or_skip(["pose_detection.tflite", "pose_landmark_full.tflite", "cam01.mp4"])
    return sample_path("cam01.mp4")


PI5_MS = (40.0, 25.0)  # the stated Raspberry Pi 5 estimate: detector, landmark run
LATENCY_P95_MAX_S = 1.0  # trigger to publish, frames published while the belt runs
FINISHED_AFTER_STOP_MAX_S = 20.0  # the last frame published after the belt stopped (the disk spool drained)


class Rig:
    """Simulated treadmill + bridge + coordinator + one video node on real footage, 120 Hz."""

    def __init__(self, broker, tmp_path, video, **node_settings):
        mqtt = broker.settings()
        line = tmp_path / "trigger-line"
        self.sim = TreadmillSimulator(tmp_path / "tty", seed=3, trigger_line=line).start()
        self.bridge = Bridge(BridgeConfig(mqtt=mqtt, serial=SerialSettings(port=self.sim.path))).start()
        self.db = tmp_path / "g.sqlite"
        self.clip_frames = VideoCamera.frames_in(video)  # the stand-in loops its footage
        self.stop = threading.Event()
        coordinator = Coordinator(CoordinatorConfig(mqtt=mqtt, storage=StorageSettings(database=self.db),
                                                    session=SessionSettings(views=["left"], start_after_s=0.5,
                                                                            end_timeout_s=120.0, fps=120.0)))
        model = node_settings.pop("model", ModelSettings(threads=1))
        camera = CameraSettings(backend="video", video=video, trigger_line=line,
                                video_in_memory=node_settings.pop("in_memory", False))
        cfg = NodeConfig(mqtt=mqtt, view="left", facing="left", spool_dir=tmp_path, model=model, camera=camera,
                         **node_settings)
        self.node = NodeDaemon(cfg, build(cfg))
        self.threads = [threading.Thread(target=d.run, args=(self.stop,), daemon=True)
                        for d in (coordinator, self.node)]
        for t in self.threads:
            t.start()
        self.watch = BusClient(mqtt, "watch").start()
        self.ends, self.summaries = queue.Queue(), queue.Queue()
        self.watch.on(topics.NODE_END, lambda m: self.ends.put(decode(NodeEnd, m.payload)))
        self.watch.on(topics.SESSION_SUMMARY, lambda m: self.summaries.put(decode(SessionSummary, m.payload)))
        self.received: list[tuple[float, float]] = []  # (received, the frame's trigger time) of each frame
        self.watch.on(topics.NODE_KEYPOINTS,
                      lambda m: self.received.append((time.time(), decode_keypoints(m.payload).t)))
        self.belt_stopped_at = float("inf")
        self.infos = []  # the node's birth message (camera, model, pacing)
        self.watch.on(topics.NODE_INFO, lambda m: self.infos.append(decode(NodeInfo, m.payload)))
        self.previews = []  # (received, frame) of the live preview
        self.watch.on(topics.NODE_PREVIEW, lambda m: self.previews.append((time.time(), decode_keypoints(m.payload))))

    def walk(self, seconds: float) -> tuple[NodeEnd, SessionSummary, int]:
        deadline = time.monotonic() + 30.0  # the node reports its camera once open (a clip in memory: ~1 s)
        while not self.infos and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        self.sim.belt_start(1.0)
        time.sleep(0.5 + seconds)
        self.sim.belt_stop()
        self.belt_stopped_at = time.time()
        end = self.ends.get(timeout=600)  # a loaded machine spools and finishes late
        return end, self.summaries.get(timeout=30), self.sim.pulses_sent

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)
        self.watch.close()
        self.bridge.stop()
        self.sim.stop()


@pytest.fixture
def rig(broker, tmp_path, video):
    rigs = []

    def make(**node_settings):
        rigs.append(Rig(broker, tmp_path, video, **node_settings))
        return rigs[-1]
    yield make
    for r in rigs:
        r.close()


def stored_track(rig: Rig, summary: SessionSummary, pulses: int):
    track = session_tracks(Storage(rig.db), summary.session_id)["left"]
    assert list(track.index) == list(range(pulses))
    return track


def assert_person_everywhere_but_the_loop_cuts(found: np.ndarray, clip_frames: int, searches: int = 1) -> None:
    """Every frame has the person's landmarks, except right after the footage loops: there
    the person jumps ~1 torso in one frame (no real camera does that), the patient selector
    refuses the first fit at the new place and the next keyframe — at most the largest interval
    the node may re-plan to while it walks later — takes it. ``searches`` 2: frames that
    waited on disk are finished as runs of their own, and a run that starts inside that
    window refuses at its start and takes the person one interval later.

    A node that fell behind also restarts at every gap in its frames (a stretch that waited on
    disk, finished later, its detector on a gray crop): the patient's gate widens for the
    frames the gap skipped (PatientSelector.skipped), a run's first looks that still miss
    hold their frames, and those are tracked back from the first look that finds the person
    (edge_models.pose.keyframes), so restarts cost no frame away from a loop cut."""
    window = DEFAULT_MAX_INTERVAL * searches
    cut = VideoCamera.after_loop(found.size, clip_frames, window)
    lost = np.flatnonzero(~found & ~cut)
    assert lost.size == 0, f"frames without landmarks away from a loop cut: {lost}"
    assert (~found & cut).sum() <= window * (found.size // clip_frames)


def test_a_clip_held_in_memory_plays_forth_and_back_as_copies_of_the_files_frames(video):
    """The in-memory stand-in shows the file's pictures 0..n-1, then n-2..1, 0, 1, ...: the
    person never jumps; each frame is its own copy (a node may keep it while the next comes)."""
    from edge_models.pose.tracking import luma_of
    from edge_models.video import read_frames
    pictures = read_frames(video)
    n = len(pictures)
    cam = VideoCamera(video, None, in_memory=True)
    cam.open()
    cam.fps = 1e6  # no pacing at the file's rate: frames as fast as they are asked for
    try:
        shown = [cam.read(1.0) for _ in range(2 * n + 1)]
    finally:
        cam.close()
    order = [*range(n), *range(n - 2, 0, -1), 0, 1, 2]
    for frame, k in zip(shown, order):
        assert np.array_equal(frame.image, pictures[k]) and np.array_equal(frame.luma, luma_of(pictures[k]))
    shown[0].image[:] = 0
    assert np.array_equal(shown[2 * n - 2].image, pictures[0])  # picture 0 again, unharmed


def test_pi_speed_node_keeps_up_at_120_hz_on_keyframes(rig):
    """The interpreter slowed to a Pi 5 estimate cannot run the landmark model at 120 Hz:
    the node measures that, runs it on keyframes and tracks the rest. The camera costs the
    CPU what a Pi's does (the clip decoded once, played forth and back: no jump at a loop).
    Every frame is published with the person's landmarks, none dropped; while the belt runs
    a frame is published within a second of its trigger (p95); what had to wait on disk
    (this PC's two cores host the whole rig) is published within seconds of the stop."""
    r = rig(model=ModelSettings(threads=1, emulate_detector_ms=PI5_MS[0], emulate_landmark_ms=PI5_MS[1]),
            in_memory=True)
    pacing = r.node.stage.figures()
    assert pacing["pace_mode"] in ("keyframes", "behind") and pacing["landmark_ms"] >= PI5_MS[1]
    end, summary, pulses = r.walk(3.0)
    assert end.captured == pulses > 300 and end.missed_triggers == 0
    assert end.dropped == 0 and end.frames == pulses and summary.complete
    assert 0 < end.tracked < pulses  # both kinds of frame were published
    assert stored_track(r, summary, pulses).found.all()
    assert r.infos and r.infos[-1].pacing["landmark_ms"] == pacing["landmark_ms"]  # in the birth message
    span_s = r.previews[-1][0] - r.previews[0][0]  # live preview: landmarks at 4 fps, not 120
    assert 3 <= len(r.previews) <= 4 * span_s + 2 and all(f.lm is not None for _, f in r.previews)
    received = np.array(r.received)
    live = received[received[:, 0] < r.belt_stopped_at]
    assert len(live) >= 50  # (how many depends on this machine's load: the share is the benchmark's)
    assert np.percentile(live[:, 0] - live[:, 1], 95) <= LATENCY_P95_MAX_S
    assert received[:, 0].max() - r.belt_stopped_at <= FINISHED_AFTER_STOP_MAX_S


def test_a_node_far_behind_spools_crops_to_disk_and_loses_nothing(rig):
    """Landmark runs of 120 ms and memory for three frames (no gray crops in memory): the
    excess waits on disk as crops and is finished after the belt stops, as runs of its own;
    every frame still has the person."""
    r = rig(model=ModelSettings(threads=1, emulate_landmark_ms=120.0), backlog_max_mb=20.0,
            backlog_crops_max_mb=0.0)
    end, summary, pulses = r.walk(2.0)
    # (how many still waited when the train was disarmed depends on the machine's load: the
    # video backend decodes on the node's CPU, and a starved capture thread reads pulses late)
    assert end.spooled > 0
    assert end.dropped == 0 and end.frames == end.captured == pulses and summary.complete
    assert_person_everywhere_but_the_loop_cuts(stored_track(r, summary, pulses).found, r.clip_frames, searches=2)


def test_past_the_disk_bound_frames_are_dropped_and_counted(rig):
    r = rig(model=ModelSettings(threads=1, emulate_landmark_ms=120.0), backlog_max_mb=20.0,
            backlog_crops_max_mb=0.0, crop_spool_max_mb=1.0)
    end, summary, pulses = r.walk(2.0)
    assert end.dropped > 0 and end.frames + end.dropped == pulses == end.captured
    assert summary.dropped == {"left": end.dropped} and not summary.complete
