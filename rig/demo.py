"""``gaitrig demo``: the whole rig, simulated on one machine, as real processes — a real
Mosquitto, the simulated treadmill controller on a pty, the bridge, the coordinator, four
simulated camera nodes and the tablet pages — each the same daemon that runs on the rig.

The simulated patient walks in a loop (belt start, walk, belt stop, rest); the rig records
by itself. ``--once --json`` runs one walk and prints its session as JSON.
"""
from __future__ import annotations

import argparse
import json
import logging
import queue
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import Presence, SessionState, SessionSummary, decode
from rig.config import ALL_VIEWS
from rig.sim.broker import LocalBroker, free_port

log = logging.getLogger("gaitrig.demo")
RIG_ID = "demo"
DAEMONS = ("bridge", "coordinator", *(f"node-{v}" for v in ALL_VIEWS))
RAMP_S = 1.0
REST_S = 4.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole rig simulated on this machine",
                       description="Starts a real Mosquitto broker, the simulated treadmill controller on a pty, "
                       "the bridge, the coordinator, four simulated camera nodes and the tablet pages "
                       "(the address is logged). The simulated patient "
                       "walks (belt start, walk, belt stop) and the rig records each walk by itself. "
                       "Ctrl-C stops everything cleanly.")
    p.add_argument("--once", action="store_true", help="one walk, then stop")
    p.add_argument("--json", action="store_true", help="print each closed session as one JSON object on stdout")
    p.add_argument("--walk-s", type=float, default=12.0, help="seconds of walking per session (default 12)")
    p.add_argument("--speed", type=float, default=1.2, help="belt speed, m/s (default 1.2)")
    p.add_argument("--fps", type=float, default=60.0, help="trigger rate, Hz (default 60)")
    p.add_argument("--workdir", type=Path, help="keep logs and the database here (default: a temp folder)")
    p.add_argument("--port", type=int, help="the broker's port (default: a free one)")
    p.set_defaults(func=run)


class Rig:
    """The daemons of one simulated rig, started as child processes and stopped together."""

    def __init__(self, workdir: Path, fps: float, speed_m_s: float, port: int | None = None):
        self.workdir, self.fps, self.speed_m_s = workdir, fps, speed_m_s
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.commands: dict[str, tuple[str, ...]] = {}  # how each daemon was started, to start it again
        self.broker = LocalBroker(workdir, port=port)
        self.link = workdir / "ttyTREADMILL"
        self.trigger_line = workdir / "trigger-line"
        self.database = workdir / "gaitrig.sqlite"

    def _spawn(self, name: str, *args: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
        log_file = open(self.workdir / f"{name}.log", "ab")
        self.commands[name] = args
        cmd = [sys.executable, "-m", "rig.cli", *args]
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=stdin,
                                start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def start(self) -> None:
        self.broker.start()
        mqtt = ["--mqtt", f"127.0.0.1:{self.broker.port}", "--rig-id", RIG_ID]
        self._write_configs()
        self.treadmill = self._spawn("sim-treadmill", "sim-treadmill", "--link", str(self.link),
                                     "--trigger-line", str(self.trigger_line), stdin=subprocess.PIPE)
        self._wait_for(self.link, "the simulated treadmill's serial device")
        self._spawn("coordinator", "coordinator", *mqtt, "--config", str(self.workdir / "coordinator.toml"))
        for view in ALL_VIEWS:
            self._spawn(f"node-{view}", "node", *mqtt, "--config", str(self.node_config(view)), "--view", view,
                        "--trigger-line", str(self.trigger_line))
        self._spawn("bridge", "bridge", *mqtt, "--serial", str(self.link))
        self.web_port = free_port()
        self.web_password = _demo_account(self.database.with_name("clinic.sqlite"))
        self._spawn("web", "web", "--database", str(self.database), "--host", "127.0.0.1",
                    "--port", str(self.web_port))

    def _write_configs(self) -> None:
        (self.workdir / "coordinator.toml").write_text(
            f'[session]\nfps = {self.fps}\nstart_after_s = 2.0\nend_timeout_s = 15.0\n'
            f'[storage]\ndatabase = "{self.database}"\n')
        (self.workdir / "node.toml").write_text(
            f'view = "left"\nspool_dir = "{self.workdir}"\n[camera]\nbackend = "simulated"\n'
            f'[walker]\nbelt_speed_m_s = {self.speed_m_s}\n'
            '[video]\nport = 0\n')  # four nodes on one machine: each its own free port, announced

    def node_config(self, view: str) -> Path:
        return self.workdir / "node.toml"

    def _wait_for(self, path: Path, what: str, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not appear at {path}")
            time.sleep(0.05)

    def belt(self, command: str) -> None:
        """Work the simulated treadmill's controls, as the clinician does."""
        self.treadmill.stdin.write(f"{command}\n".encode())
        self.treadmill.stdin.flush()

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_alive()
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def check_alive(self) -> None:
        for name, p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}; see {self.workdir / (name + '.log')}")

    def stop(self) -> None:
        for _, p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", name)
                p.kill()
        self.broker.stop()


class Watch:
    """What a technician would watch: who is online, session states and summaries."""

    def __init__(self, rig: Rig):
        self.client = BusClient(rig.broker.settings(RIG_ID), "demo-watch")
        self.summaries: queue.Queue = queue.Queue()
        self.online: set[str] = set()
        self.client.on(topics.SESSION_STATE, self._on_state)
        self.client.on(topics.SESSION_SUMMARY, self._on_summary)
        self.client.on(topics.PRESENCE, self._on_presence)
        self.client.start()

    def _on_summary(self, msg) -> None:
        if not msg.retain:  # a retained one is an earlier walk's, sent again on (re)connecting
            self.summaries.put(decode(SessionSummary, msg.payload))

    def _on_state(self, msg) -> None:
        s = decode(SessionState, msg.payload)
        if s.state != "idle":
            log.info("session %s: %s (%s)", s.session_id, s.state, s.reason)

    def _on_presence(self, msg) -> None:
        p = decode(Presence, msg.payload)
        (self.online.add if p.online else self.online.discard)(p.daemon)

    def wait_up(self, rig: Rig, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not set(DAEMONS) <= self.online:
            if time.monotonic() > deadline:
                raise RuntimeError(f"daemons not up: {', '.join(sorted(set(DAEMONS) - self.online))}")
            rig.sleep(0.1)
        log.info("all daemons up: %s", ", ".join(DAEMONS))

    def next_summary(self, rig: Rig, timeout_s: float) -> SessionSummary:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.summaries.get(timeout=0.5)
            except queue.Empty:
                rig.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no session closed in time; see the logs in {rig.workdir}") from None


def session_json(summary: SessionSummary) -> dict:
    return {"session_id": summary.session_id, "frames": summary.frames, "dropped": summary.dropped,
            "pulses_sent": summary.pulses_sent, "complete": summary.complete, "stop_reason": summary.reason,
            "duration_s": round(summary.ended_t - summary.started_t, 2),
            "belt_speed_m_s": summary.belt_speed_m_s, "cadence_steps_per_min": summary.cadence_steps_per_min,
            "findings": summary.findings, "analysis_error": summary.analysis_error}


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


DEMO_USER = "demo"


def _demo_account(clinic_db: Path) -> str:
    """An admin account for this demo only, with a fresh random password (the rig has no
    default password: a real one gets its first account from `gaitrig users add`)."""
    import secrets

    from rig.clinic.accounts import Accounts
    from rig.clinic.store import ClinicStore
    accounts = Accounts(ClinicStore(clinic_db))
    password = secrets.token_urlsafe(9)
    accounts.remove(DEMO_USER)
    accounts.add(DEMO_USER, "admin", password)
    return password


def run(args) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a service manager: stop everything cleanly
        signal.signal(sig, _interrupt)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gaitrig-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rig = Rig(workdir, args.fps, args.speed, args.port)
    watch = None
    log.info("simulated rig in %s (logs, database)", workdir)
    try:
        rig.start()
        log.info("diagnostics, from another terminal: gaitrig diag status --mqtt 127.0.0.1:%d --rig-id %s",
                 rig.broker.port, RIG_ID)
        log.info("the clinician's tablet pages: http://127.0.0.1:%d/ (log in as %s, password: %s)",
                 rig.web_port, DEMO_USER, rig.web_password)
        watch = Watch(rig)
        watch.wait_up(rig)
        while True:
            log.info("the patient steps on; belt to %.1f m/s for %.0f s", args.speed, args.walk_s)
            rig.belt(f"start {args.speed} {RAMP_S}")
            rig.sleep(RAMP_S + args.walk_s)
            rig.belt("stop")
            out = session_json(watch.next_summary(rig, timeout_s=60))
            print(json.dumps(out) if args.json else _describe(out), flush=True)
            if args.once:
                return 0 if out["complete"] else 1
            rig.sleep(REST_S)
    except KeyboardInterrupt:
        log.info("stopping the rig")
        return 0
    except RuntimeError as e:
        print(f"gaitrig demo: {e}", file=sys.stderr)
        return 1
    finally:
        if watch:
            watch.client.close()
        rig.stop()


def _describe(s: dict) -> str:
    frames = ", ".join(f"{v} {n}" for v, n in s["frames"].items())
    cadence = s["cadence_steps_per_min"]
    gait = (f"cadence {cadence:.1f} steps/min" if cadence is not None
            else f"no cadence ({s['analysis_error'] or 'not computed'})")
    findings = "".join(f"\n  - {f}" for f in s["findings"]) or "\n  - no findings"
    return (f"session {s['session_id']}: {s['pulses_sent']} pulses, frames {frames}; "
            f"{'complete' if s['complete'] else 'INCOMPLETE'} ({s['stop_reason']}, {s['duration_s']} s); "
            f"{gait}{findings}")
