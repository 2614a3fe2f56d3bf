"""The whole rig against its real parts: a real Mosquitto, the simulated controller on a
real pty with its trigger line, the bridge, the coordinator with SQLite, four simulated
camera nodes. Each test walks the patient and checks what the clinic would: one session,
closed, with one frame per trigger pulse from every view."""
from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from firmware_bridge.bridge import Bridge
from firmware_bridge.simulator import TreadmillSimulator
from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import SessionState, SessionSummary, decode
from rig.config import (ALL_VIEWS, BridgeConfig, CameraSettings, CoordinatorConfig, NodeConfig, SerialSettings,
                        SessionSettings, StorageSettings)
from rig.coordinator.daemon import Coordinator
from rig.coordinator.storage import Storage
from rig.node.cli import build
from rig.node.daemon import NodeDaemon


def next_state(states: "queue.Queue[SessionState]", state: str, timeout_s: float) -> SessionState:
    """The next session state ``state`` from the queue the watcher fills; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            s = states.get(timeout=0.2)
        except queue.Empty:
            continue
        if s.state == state:
            return s
    pytest.fail(f"the session never became {state!r}")


class RunningRig:
    """``miss_fraction``: view -> share of trigger pulses that camera misses;
    ``health_period_s``: how often the nodes publish their diagnostics health."""

    def __init__(self, broker, tmp: Path, miss_fraction: dict[str, float] | None = None,
                 health_period_s: float | None = None):
        self.broker, self.tmp = broker, tmp
        self.stop = threading.Event()
        self.sim = TreadmillSimulator(tmp / "ttyTREADMILL", seed=7, trigger_line=tmp / "trigger-line").start()
        mqtt = broker.settings()
        self.bridge = Bridge(BridgeConfig(mqtt=mqtt, serial=SerialSettings(port=self.sim.path))).start()
        self.db = tmp / "gaitrig.sqlite"
        self.coordinator = Coordinator(CoordinatorConfig(
            mqtt=mqtt, storage=StorageSettings(database=self.db),
            session=SessionSettings(start_after_s=0.5, end_timeout_s=20.0, fps=60.0)))
        self.nodes = [NodeDaemon(cfg, build(cfg)) for cfg in (
            NodeConfig(mqtt=mqtt, view=v, spool_dir=tmp, camera=CameraSettings(
                trigger_line=tmp / "trigger-line", miss_fraction=(miss_fraction or {}).get(v, 0.0)))
            for v in ALL_VIEWS)]
        for node in self.nodes:
            node.diag.period_s = health_period_s or node.diag.period_s
        self.threads = [threading.Thread(target=d.run, args=(self.stop,), daemon=True)
                        for d in [self.coordinator, *self.nodes]]
        for t in self.threads:
            t.start()
        self.watcher = BusClient(mqtt, "test-watch")
        self.states: queue.Queue = queue.Queue()
        self.summaries: queue.Queue = queue.Queue()
        self.watcher.on(topics.SESSION_STATE, lambda m: self.states.put(decode(SessionState, m.payload)))
        self.watcher.on(topics.SESSION_SUMMARY, lambda m: self.summaries.put(decode(SessionSummary, m.payload)))
        self.watcher.start()
        time.sleep(0.5)

    def wait_state(self, state: str, timeout_s: float = 10.0) -> SessionState:
        return next_state(self.states, state, timeout_s)

    def walk(self, seconds: float, during=None) -> SessionSummary:
        """Belt start, walk, belt stop; returns the closed session's summary."""
        self.sim.belt_start(1.2, ramp_s=0.2)
        started = self.wait_state("recording")
        if during:
            during()
        time.sleep(seconds)
        self.sim.belt_stop()
        summary = self.summaries.get(timeout=40)
        assert summary.session_id == started.session_id
        return summary

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)
        self.watcher.close()
        self.bridge.stop()
        self.sim.stop()


@pytest.fixture
def rig(broker, tmp_path):
    r = RunningRig(broker, tmp_path)
    yield r
    r.close()


def assert_every_pulse_from_every_view(rig: RunningRig, summary: SessionSummary) -> None:
    pulses = rig.sim.pulses_sent
    assert pulses > 60
    assert summary.pulses_sent == pulses
    assert summary.frames == {v: pulses for v in ALL_VIEWS}
    assert summary.dropped == {v: 0 for v in ALL_VIEWS}
    assert summary.complete


def test_belt_start_records_a_session_and_belt_stop_closes_it(rig):
    summary = rig.walk(3.0)
    assert_every_pulse_from_every_view(rig, summary)
    assert summary.reason == "belt stopped"
    storage = Storage(rig.db)
    row = storage.session(summary.session_id)
    assert (row.state, row.start_reason, row.complete) == ("closed", "belt running", True)
    assert {n.view: n.frames_reported for n in storage.nodes(row.id)} == {v: rig.sim.pulses_sent for v in ALL_VIEWS}
    assert {n.missed_triggers for n in storage.nodes(row.id)} == {0}
    speeds = [v for _, v in storage.belt_profile(row.id)]
    assert max(speeds) == pytest.approx(1.2) and speeds[-1] == 0.0


def test_serial_device_vanishing_mid_session_reconnects_and_the_session_closes(rig):
    def vanish_once_armed():
        deadline = time.monotonic() + 5
        while not rig.sim.armed and time.monotonic() < deadline:
            time.sleep(0.01)
        rig.sim.vanish(1.5)  # the controller keeps triggering; only the host's line is gone
    summary = rig.walk(4.0, during=vanish_once_armed)
    assert rig.bridge.link.reconnects == 1
    assert_every_pulse_from_every_view(rig, summary)


def test_corrupted_byte_storm_mid_session_loses_nothing(rig):
    def storm():
        rig.sim.inject_noise(100_000)
        rig.sim.corrupt_next(5, "bitflip")
        rig.sim.corrupt_next(5, "truncate")
    summary = rig.walk(3.0, during=storm)
    assert rig.bridge.link.rejected > 10
    assert_every_pulse_from_every_view(rig, summary)


def test_broker_outage_mid_session_still_ends_with_every_frame(rig):
    def outage():
        time.sleep(1.0)
        rig.broker.stop()
        time.sleep(4.0)
        rig.broker.start()
    summary = rig.walk(2.0, during=outage)
    assert_every_pulse_from_every_view(rig, summary)
    assert all(n.bus.reconnects >= 1 for n in rig.nodes)


def test_manual_start_and_stop_without_the_belt(rig):
    rig.watcher.send(topics.SESSION_CMD, b'{"v":1,"action":"start","by":"test"}')
    rig.wait_state("recording")
    time.sleep(1.5)
    rig.watcher.send(topics.SESSION_CMD, b'{"v":1,"action":"stop","by":"test"}')
    summary = rig.summaries.get(timeout=30)
    assert summary.reason == "manual stop"
    assert_every_pulse_from_every_view(rig, summary)


def test_demo_once_json_runs_the_whole_rig_as_processes(tmp_path):
    from rig.demo import visit_walker as demo_walker
    from rig.sim.walker import SimulatedWalker
    r = subprocess.run([sys.executable, "-m", "rig.cli", "demo", "--once", "--json", "--walk-s", "8",
                        "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["session_id"] == 1
    assert set(out["frames"]) == set(ALL_VIEWS)
    assert set(out["frames"].values()) == {out["pulses_sent"]} and out["pulses_sent"] > 300
    assert out["dropped"] == {v: 0 for v in ALL_VIEWS}
    barefoot = demo_walker(1.2, 0)  # the demo patient's first walk of the visit
    truth = SimulatedWalker(barefoot.params(), fps=60.0, seed=barefoot.seed).truth(0.0, out["pulses_sent"] / 60.0)
    assert out["cadence_steps_per_min"] == pytest.approx(truth.cadence_steps_per_min, rel=0.01)
    # the demo patient's right rearfoot everts 9.5° and the left hip is 3° higher
    assert len(out["findings"]) == 2, out["findings"]
    assert "right rearfoot eversion" in out["findings"][0]
    assert "pelvic obliquity" in out["findings"][1] and "left hip higher" in out["findings"][1]


def test_a_session_exports_as_keypoint_files_matching_the_walker(rig, tmp_path):
    import numpy as np

    from rig.coordinator.export import export_session
    from rig.keypoints import read_track
    from rig.sim.walker import SimulatedWalker, WalkerParams
    summary = rig.walk(2.0)
    storage = Storage(rig.db)
    paths = export_session(storage, summary.session_id, tmp_path / "export")
    walker = SimulatedWalker(WalkerParams(), fps=60.0, seed=0)
    for view in ALL_VIEWS:
        track = read_track(paths[view])
        assert (track.header.view, track.header.fps, track.header.width) == (view, 60.0, 1456)
        assert track.header.facing == walker.header(view).facing
        assert list(track.index) == list(range(summary.pulses_sent))
        assert track.t_s[1] - track.t_s[0] == pytest.approx(1 / 60, abs=1e-3)
        truth = walker.landmarks(view, track.index)
        assert np.nanmax(np.abs(track.lm[:, :, :2] - truth[:, :, :2])) <= 1 / 16 + 0.01


def test_demo_runs_diag_status_lists_every_daemon_and_ctrl_c_stops_everything(tmp_path):
    """As a technician would: while `gaitrig demo` runs, the command it suggests lists every
    daemon up with its figures; Ctrl-C then stops every process of the rig."""
    import re
    import signal
    proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "demo", "--workdir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    diag_cmd = tablet = None
    for line in proc.stderr:
        if m := re.search(r"gaitrig (diag status .*)$", line):
            diag_cmd = m.group(1).split()
        if m := re.search(r"tablet: (http\S+)/ — log in as '(\w+)' with the password '([^']+)'", line):
            tablet, user, password = m.groups()
        if "all daemons up" in line:
            break
    status = subprocess.run([sys.executable, "-m", "rig.cli", *diag_cmd], capture_output=True, text=True,
                            timeout=60)
    from test_web import http, login_cookie
    page = http(tablet + "/", login_cookie(tablet, user, password))[1]
    proc.send_signal(signal.SIGINT)
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()[1:] if line.strip()}
    assert {d: rows.get(d) for d in ("bridge", "coordinator", *(f"node-{v}" for v in ALL_VIEWS))} == {
        d: "up" for d in ("bridge", "coordinator", *(f"node-{v}" for v in ALL_VIEWS))}, status.stdout
    assert "<title>Sessions · gaitrig</title>" in page
    assert proc.wait(30) == 0
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert left == [], "processes of the demo still running after Ctrl-C"


def test_an_arm_refused_while_the_serial_line_is_down_is_sent_again(rig, caplog):
    """A session started while the controller's device is away: the bridge refuses the arm
    at once; the coordinator sends it again until the line is back, and the session is whole."""
    rig.sim.vanish(2.5)
    time.sleep(0.3)
    rig.watcher.send(topics.SESSION_CMD, b'{"v":1,"action":"start","by":"test"}')
    rig.wait_state("recording")
    time.sleep(5.0)
    rig.watcher.send(topics.SESSION_CMD, b'{"v":1,"action":"stop","by":"test"}')
    summary = rig.summaries.get(timeout=30)
    assert any("controller refused arm" in r.message for r in caplog.records)
    assert_every_pulse_from_every_view(rig, summary)


def test_each_node_keeps_the_walk_as_real_frames_and_serves_them_by_trigger_index(rig):
    """The simulated nodes draw the walker into real frames, keep them on their disk by
    trigger index and serve them over HTTP at the address their birth message names."""
    import urllib.request

    import cv2
    import numpy as np

    from rig.ops.still import render_skeleton
    from rig.sim.walker import SimulatedWalker, WalkerParams
    from rig.video import protocol
    summary = rig.walk(2.0)
    pulses = summary.pulses_sent
    walker = SimulatedWalker(WalkerParams(), fps=60.0, seed=0)
    storage = Storage(rig.db)
    for node in rig.nodes:
        view, rec = node.config.view, node.video.recorder
        url = f"{node.video.url}/v1/clips/{summary.session_id}"
        deadline = time.monotonic() + 20
        while True:  # the recorder's thread may still be writing the last frames
            info = json.loads(urllib.request.urlopen(url, timeout=10).read())
            if info["frames"] + rec.stats.not_kept >= pulses or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert info["frames"] + rec.stats.not_kept == pulses and info["frames"] >= 0.9 * pulses, (view, info)
        assert (info["width"], info["source_width"], info["fps"]) == (728, 1456, 60.0)
        assert json.loads(storage.node_info(view))["clips_url"] == node.video.url
        data = urllib.request.urlopen(f"{url}/frames?from=30&to=89", timeout=10).read()
        index, jpeg = next(protocol.decode_stream(data))
        got = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(float)
        drawn = [render_skeleton(walker.landmarks(view, np.array([i]))[0], 1456, 1088, 0.5) for i in (index, index + 15)]
        same, other = (np.abs(got - d).mean() for d in drawn)
        assert same < 1.5 and other > 2 * same, (view, index, same, other)  # the walker at that very pulse
