"""The daemons as systemd runs them: real processes speaking sd_notify to a test socket —
READY, STATUS, watchdog pings while the pipeline moves, none once it stalls, STOPPING."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from test_ops_notify import Listener

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import SessionState, TriggerState
from rig.sim.trigger_line import TriggerLine

WATCHDOG_USEC = 1_000_000  # pings every 0.5 s


def start(args: list[str], sock: str) -> subprocess.Popen:
    env = {**os.environ, "NOTIFY_SOCKET": sock, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    env.pop("WATCHDOG_PID", None)
    return subprocess.Popen([sys.executable, "-m", "rig.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_coordinator_reports_ready_status_pings_and_stopping(broker, tmp_path):
    sock = str(tmp_path / "notify.sock")
    lst = Listener(sock)
    proc = start(["coordinator", "--mqtt", f"127.0.0.1:{broker.port}", "--rig-id", "test",
                  "--database", str(tmp_path / "g.sqlite")], sock)
    try:
        assert "READY=1" in lst.wait_for("READY=1", timeout_s=20)
        t0 = time.monotonic()
        time.sleep(2.1)
        assert lst.pings_between(t0, time.monotonic()) >= 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        lst.wait_for("STOPPING=1")
    finally:
        proc.kill()
        lst.close()


def test_a_node_whose_camera_stops_mid_session_stops_feeding_the_watchdog(broker, tmp_path):
    """The trigger line keeps the train armed but no frame comes: after the stall limit the
    pings stop, so systemd's WatchdogSec= restarts the node."""
    sock = str(tmp_path / "notify.sock")
    lst = Listener(sock)
    line = TriggerLine(tmp_path / "trigger-line", create=True)
    cfg = tmp_path / "node.toml"
    cfg.write_text(f'view = "left"\nspool_dir = "{tmp_path}"\n[camera]\nbackend = "simulated"\n'
                   f'trigger_line = "{tmp_path / "trigger-line"}"\n')
    proc = start(["node", "--config", str(cfg), "--mqtt", f"127.0.0.1:{broker.port}", "--rig-id", "test"], sock)
    ctl = BusClient(broker.settings(), "test-coordinator").start()
    try:
        lst.wait_for("READY=1", timeout_s=20)
        first = time.time() + 0.1
        line.arm(first, 60.0)
        ctl.send(topics.SESSION_STATE, SessionState(t=time.time(), state="recording", session_id=1, views=["left"]))
        ctl.send(topics.TREADMILL_TRIGGER, TriggerState(t=time.time(), armed=True, rate_hz=60.0,
                                                        first_pulse_t=first, pulses_sent=0))
        for k in range(1, 91):  # 1.5 s of pulses, then the camera sees no more
            time.sleep(1 / 60)
            line.pulses(k)
        t_stall = time.monotonic()
        assert lst.pings_between(t_stall - 1.5, t_stall) >= 2, "no pings while frames arrived"
        time.sleep(6.5)  # the node's stall limit is 5 s
        assert lst.pings_between(time.monotonic() - 1.2, time.monotonic()) == 0, "still pinging a stalled camera"
        lst.wait_for("STATUS=")
    finally:
        proc.terminate()
        proc.wait(15)
        ctl.close()
        lst.close()
