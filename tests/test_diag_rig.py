"""Diagnostics of the whole rig (tests/test_rig.py's RunningRig: real Mosquitto, simulated
controller on a pty, bridge, coordinator, four simulated nodes): the health figures are the
real counts of a session, ``gaitrig diag status`` lists every daemon, a technician gets a
still and the self-tests pass, and a silent controller becomes an event."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from test_rig import RunningRig

from rig.bus import topics
from rig.bus.payloads import DiagEvent, decode
from rig.config import ALL_VIEWS
from rig.ops.diag_cli import DiagClient
from rig.sim.broker import LocalBroker
from test_diag import client_args

RIG = "test"  # LocalBroker.settings()' default rig id
DAEMONS = ["bridge", "coordinator", *(f"node-{v}" for v in ALL_VIEWS)]


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    """One rig, one 2 s walk, shared by the tests of this module."""
    tmp = tmp_path_factory.mktemp("diag-rig")
    broker = LocalBroker(tmp).start()
    rig = RunningRig(broker, tmp)
    try:
        summary = rig.walk(2.0)
        yield rig, summary
    finally:
        rig.close()
        broker.stop()


@pytest.fixture
def tech(walked):
    client = DiagClient(client_args(walked[0].broker.port)).connect()
    yield client
    client.close()


def _cli(rig: RunningRig, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rig.cli", "diag", *args, "--mqtt", f"127.0.0.1:{rig.broker.port}",
                           "--rig-id", RIG], capture_output=True, text=True, timeout=60)


def test_health_figures_are_the_sessions_real_counts(walked, tech):
    rig, summary = walked
    pulses = summary.pulses_sent
    assert pulses == rig.sim.pulses_sent > 60
    for view in ALL_VIEWS:
        f = tech.request(f"node-{view}", "health", []).result["figures"]
        assert (f["frames_in"], f["frames_out"], f["dropped"], f["missed_triggers"]) == (pulses, pulses, 0, 0)
        assert f["inference_backlog"] == 0 and f["inference_latency_ms_p95"] is not None
    coord = tech.request("coordinator", "health", []).result["figures"]
    assert {v: coord[f"frames_received_{v}"] for v in ALL_VIEWS} == {v: pulses for v in ALL_VIEWS}
    assert coord["last_session_id"] == summary.session_id and coord["session_state"] == "idle"
    bridge = tech.request("bridge", "health", []).result
    assert bridge["figures"]["serial_connected"] and bridge["figures"]["trigger_armed"] is False
    assert bridge["uptime_s"] > 0 and bridge["mem_rss_mb"] > 0


def test_diag_status_lists_every_daemon_with_its_figures(walked):
    r = _cli(walked[0], "status")
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:] if line.strip()}
    assert set(DAEMONS) <= set(lines), r.stdout
    assert all(lines[d].split()[1] == "up" for d in DAEMONS), r.stdout
    pulses = walked[1].pulses_sent
    assert f"frames_out={pulses}" in lines["node-left"] and f"frames_received_rear={pulses}" in lines["coordinator"]
    assert "serial_connected=True" in lines["bridge"]


def test_a_technician_gets_a_still_of_the_camera_view(walked, tmp_path):
    out = tmp_path / "aim.jpg"
    r = _cli(walked[0], "cmd", "node-left", "still", "--out", str(out))
    assert r.returncode == 0, r.stderr
    image = cv2.imdecode(np.frombuffer(out.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (1088, 1456, 3) and image.max() > 150  # the walker's skeleton, drawn


def test_every_selftest_passes_on_a_healthy_rig(walked):
    r = _cli(walked[0], "selftest", "all")
    assert r.returncode == 0, r.stdout + r.stderr
    names = {line.split()[0] for line in r.stdout.splitlines()}
    assert names == set(DAEMONS)
    assert "serial" in r.stdout and "walker rendered 33 landmarks" in r.stdout and "FAIL" not in r.stdout


def test_a_silent_controller_raises_an_event_and_clears_it(walked, tech):
    rig = walked[0]
    tech.subscribe(topics.DIAG_EVENT.path(RIG, daemon="bridge"))
    rig.sim.pause(3.5)
    events = []
    while not any(e.kind == "controller_silent" and not e.active for e in events):
        msg = tech.messages.get(timeout=8)
        if msg.topic.endswith("/event"):
            events.append(decode(DiagEvent, msg.payload))
    raised = next(e for e in events if e.kind == "controller_silent")
    assert raised.active and raised.level == "error"
