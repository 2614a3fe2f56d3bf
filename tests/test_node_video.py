"""A camera node running the real pose pipeline on real footage inside the rig: the video
backend follows the simulated trigger line, inference falls behind the 120 Hz camera, the
backlog waits in the bounded buffer and is finished after the belt stops — and the
coordinator still gets every frame, each with the person found."""
from __future__ import annotations

import queue
import threading
import time

import pytest

from conftest import assets_or_skip
from edge_models.fetch import sample_path
from firmware_bridge.bridge import Bridge
from firmware_bridge.simulator import TreadmillSimulator
from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import NodeEnd, SessionSummary, decode
from rig.config import (BridgeConfig, CameraSettings, CoordinatorConfig, ModelSettings, NodeConfig, SerialSettings,
                        SessionSettings, StorageSettings)
from rig.coordinator.daemon import Coordinator
from rig.coordinator.export import session_tracks
from rig.coordinator.storage import Storage
from rig.node.cli import build
from rig.node.daemon import NodeDaemon


@pytest.fixture
def video():
    assets_or_skip(["pose_detection.tflite", "pose_landmark_full.tflite", "cam01.mp4"])
    return sample_path("cam01.mp4")


@pytest.mark.parametrize("backlog_max_mb", [3000.0, 100.0])
def test_inference_behind_the_camera_finishes_the_backlog(broker, tmp_path, video, backlog_max_mb):
    """With room for the backlog nothing is lost; with a small bound (16 frames of 1080x1920)
    the frames beyond it are dropped, counted, and the session says it is incomplete."""
    mqtt = broker.settings()
    line = tmp_path / "trigger-line"
    sim = TreadmillSimulator(tmp_path / "tty", seed=3, trigger_line=line).start()
    bridge = Bridge(BridgeConfig(mqtt=mqtt, serial=SerialSettings(port=sim.path))).start()
    db = tmp_path / "g.sqlite"
    stop = threading.Event()
    coordinator = Coordinator(CoordinatorConfig(mqtt=mqtt, storage=StorageSettings(database=db), session=SessionSettings(
        views=["left"], start_after_s=0.5, end_timeout_s=60.0, fps=120.0)))
    node_cfg = NodeConfig(mqtt=mqtt, view="left", facing="left", spool_dir=tmp_path,
                          camera=CameraSettings(backend="video", video=video, trigger_line=line),
                          model=ModelSettings(threads=2), backlog_max_mb=backlog_max_mb)
    node = NodeDaemon(node_cfg, build(node_cfg))
    threads = [threading.Thread(target=d.run, args=(stop,), daemon=True) for d in (coordinator, node)]
    for t in threads:
        t.start()
    watch = BusClient(mqtt, "watch").start()
    ends, summaries = queue.Queue(), queue.Queue()
    watch.on(topics.NODE_END, lambda m: ends.put(decode(NodeEnd, m.payload)))
    watch.on(topics.SESSION_SUMMARY, lambda m: summaries.put(decode(SessionSummary, m.payload)))
    time.sleep(1.0)
    try:
        sim.belt_start(1.0)
        time.sleep(0.5 + 3.0)
        sim.belt_stop()
        end = ends.get(timeout=90)
        summary = summaries.get(timeout=30)
        pulses = sim.pulses_sent
        assert end.backlog_at_train_end > 0, "inference kept up: the backlog path was not exercised"
        assert end.captured == pulses > 300 and end.missed_triggers == 0
        assert end.frames + end.dropped == pulses
        assert summary.frames == {"left": end.frames} and summary.dropped == {"left": end.dropped}
        if backlog_max_mb == 100.0:
            assert end.dropped > 0 and not summary.complete
            return
        assert end.dropped == 0 and end.frames == pulses and summary.complete
        track = session_tracks(Storage(db), summary.session_id)["left"]
        assert list(track.index) == list(range(pulses))
        assert track.found.all(), "the person in the footage was not found in every frame"
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        watch.close()
        bridge.stop()
        sim.stop()
