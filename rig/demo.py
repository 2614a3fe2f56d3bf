"""``gaitrig demo``: the whole rig, simulated on one machine, as real processes — a real
Mosquitto, the simulated treadmill controller on a pty, the bridge, the coordinator, four
simulated camera nodes and the tablet pages — each the same daemon that runs on the rig.

The simulated patient walks through a visit in a loop — barefoot, in shoes, with an orthotic
(:data:`VISIT`), each walk with its own stride-to-stride variability — and the rig records
each walk by itself; the demo picks the demo patient and the condition before each walk, as
a clinician does on the tablet, so the patient's page and the comparison show real
differences. ``--once --json`` runs one (barefoot) walk and prints its session as JSON.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import Presence, SessionState, SessionSummary, decode
from rig.clinic.model import Condition, PatientFields
from rig.config import ALL_VIEWS, WalkerSettings
from rig.daemon import stop_event_on_signals
from rig.sim.broker import LocalBroker, free_port

log = logging.getLogger("gaitrig.demo")
RIG_ID = "demo"
DAEMONS = ("bridge", "coordinator", *(f"node-{v}" for v in ALL_VIEWS))
RAMP_S = 1.0
REST_S = 4.0


@dataclass(frozen=True)
class VisitStep:
    """One walk of the demo visit: the condition and how the simulated patient walks in it."""

    kind: str
    label: str
    walker: dict = field(default_factory=dict)  # WalkerSettings fields

    @property
    def condition(self) -> Condition:
        return Condition.parse(self.kind, self.label)


# The demo patient: a mildly pronated right foot and a right leg ~10 mm short (left hip 3°
# higher), seen with 1 px of landmark jitter. Shoes: slower cadence, so longer strides at the
# same belt speed (Franklin et al. 2015, Gait Posture 42:230-239), rearfoot a little less
# everted; the orthotic takes about 2° more off the rearfoot eversion (Mills et al. 2010, Br J
# Sports Med 44:1035-1046) and does nothing for the leg length. Docs: docs/walker.md ("The
# demo visit").
_PATIENT = dict(pelvic_obliquity_deg=3.0, stride_time_cv_pct=2.0, noise_px=1.0)
VISIT = (
    VisitStep("barefoot", "", dict(_PATIENT, cadence_steps_per_min=114.0, stance_pct=61.0,
                                   rearfoot_eversion_left_deg=6.0, rearfoot_eversion_right_deg=9.5)),
    VisitStep("shoes", "demo trainers", dict(_PATIENT, cadence_steps_per_min=109.0, stance_pct=62.0,
                                             rearfoot_eversion_left_deg=5.5, rearfoot_eversion_right_deg=9.0)),
    VisitStep("orthotic", "FootChair, arch 3", dict(_PATIENT, cadence_steps_per_min=109.0, stance_pct=62.0,
                                                   rearfoot_eversion_left_deg=3.5, rearfoot_eversion_right_deg=7.0)),
)
DEMO_PATIENT = PatientFields.parse("Demo Patient", "1980-05-17", "DEMO-1", "simulated: pronated right foot, "
                                   "right leg about 10 mm short")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole rig simulated on this machine",
                       description="Starts a real Mosquitto broker, the simulated treadmill controller on a pty, "
                       "the bridge, the coordinator, four simulated camera nodes and the tablet pages "
                       "(the address and a login are printed). A simulated patient "
                       "walks through a visit — barefoot, shoes, orthotic — again and again (belt start, walk, "
                       "belt stop), each walk assigned to the demo patient; the rig records each by itself. "
                       "Ctrl-C stops everything cleanly.")
    p.add_argument("--once", action="store_true", help="one walk, then stop")
    p.add_argument("--visit", action="store_true", help="one visit (barefoot, shoes, orthotic), then stop")
    p.add_argument("--json", action="store_true", help="print each closed session as one JSON object on stdout")
    p.add_argument("--walk-s", type=float, default=12.0, help="seconds of walking per session (default 12)")
    p.add_argument("--speed", type=float, default=1.2, help="belt speed, m/s (default 1.2)")
    p.add_argument("--fps", type=float, default=60.0, help="trigger rate, Hz (default 60)")
    p.add_argument("--workdir", type=Path, help="keep logs and the database here (default: a temp folder)")
    p.add_argument("--port", type=int, help="the broker's port (default: a free one)")
    p.set_defaults(func=run)


class Stopped(Exception):
    """Ctrl-C or SIGTERM: the rig is to stop."""


class Rig:
    """The daemons of one simulated rig, started as child processes and stopped together.
    ``stopping`` (set by a signal handler) ends every wait of the rig with :class:`Stopped`:
    the interruption comes at a check of ours, never inside a library call or an import."""

    def __init__(self, workdir: Path, fps: float, speed_m_s: float, port: int | None = None,
                 stopping: threading.Event | None = None):
        self.workdir, self.fps, self.speed_m_s = workdir, fps, speed_m_s
        self.stopping = stopping or threading.Event()
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.commands: dict[str, tuple[str, ...]] = {}  # how each daemon was started, to start it again
        self.broker = LocalBroker(workdir, port=port)
        self.link = workdir / "ttyTREADMILL"
        self.trigger_line = workdir / "trigger-line"
        self.database = workdir / "gaitrig.sqlite"
        self.walker = WalkerSettings(belt_speed_m_s=speed_m_s)  # how the simulated patient walks now

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
            f'[walker]\nbelt_speed_m_s = {self.speed_m_s}\nscript = "{self.walker_script}"\n'
            '[video]\nport = 0\n')  # four nodes on one machine: each its own free port, announced
        self.walk_as(self.walker)

    @property
    def walker_script(self) -> Path:
        """The simulated patient's knobs, read by the simulated cameras at each new walk."""
        return self.workdir / "walker.toml"

    def walk_as(self, walker: WalkerSettings) -> None:
        """From the next walk on the patient walks so (other shoes, other strides): the
        simulated cameras read the knobs again when the next trigger train starts."""
        self.walker = walker
        knobs = "".join(f"{k} = {v!r}\n" for k, v in walker.model_dump(exclude={"script"}).items())
        tmp = self.walker_script.with_suffix(".tmp")
        tmp.write_text(f"[walker]\n{knobs}")
        tmp.replace(self.walker_script)  # a camera never reads half a file

    def node_config(self, view: str) -> Path:
        return self.workdir / "node.toml"

    def _wait_for(self, path: Path, what: str, timeout_s: float = 60.0) -> None:
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
        if self.stopping.is_set():
            raise Stopped
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
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gaitrig-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rig = Rig(workdir, args.fps, args.speed, args.port, stopping=stop_event_on_signals())
    rig.walker = visit_walker(args.speed, 0)
    watch = None
    log.info("simulated rig in %s (logs, database)", workdir)
    try:
        rig.start()
        log.info("diagnostics, from another terminal: gaitrig diag status --mqtt 127.0.0.1:%d --rig-id %s",
                 rig.broker.port, RIG_ID)
        print(f"The clinician's tablet: http://127.0.0.1:{rig.web_port}/ — log in as {DEMO_USER!r} with the "
              f"password {rig.web_password!r} (made for this demo only)", file=sys.stderr, flush=True)
        watch = Watch(rig)
        watch.wait_up(rig)
        visit, complete = DemoVisit(rig), True
        for walk in itertools.count():
            step = VISIT[walk % len(VISIT)]
            if walk:
                log.info("the patient changes to: %s", step.condition)
                rig.walk_as(visit_walker(args.speed, walk))
            visit.pick(step)
            log.info("the patient steps on (%s); belt to %.1f m/s for %.0f s", step.condition, args.speed, args.walk_s)
            rig.belt(f"start {args.speed} {RAMP_S}")
            rig.sleep(RAMP_S + args.walk_s)
            rig.belt("stop")
            summary = watch.next_summary(rig, timeout_s=60)
            visit.walked(summary.session_id)
            out = session_json(summary)
            print(json.dumps(out) if args.json else _describe(out), flush=True)
            complete = complete and out["complete"]
            if args.once or (args.visit and walk == len(VISIT) - 1):
                return 0 if complete else 1
            if walk % len(VISIT) == len(VISIT) - 1:
                log.info("visit walked: the patient's page http://127.0.0.1:%d/patients/%d compares the conditions",
                         rig.web_port, visit.patient_id)
            rig.sleep(REST_S)
    except Stopped:
        log.info("stopping the rig")
        return 0
    except RuntimeError as e:
        print(f"gaitrig demo: {e}", file=sys.stderr)
        return 1
    finally:
        if watch:
            watch.client.close()
        rig.stop()


def visit_walker(speed_m_s: float, walk: int) -> WalkerSettings:
    """How the demo patient walks on walk number ``walk`` of the loop: the visit step's
    knobs, and a seed of its own so no two walks have the same strides."""
    return WalkerSettings(belt_speed_m_s=speed_m_s, seed=walk + 1, **VISIT[walk % len(VISIT)].walker)


class DemoVisit:
    """The demo patient, and the condition picked for each walk as a clinician does on the
    tablet: the pick goes to the next session the coordinator records."""

    def __init__(self, rig: Rig):
        from rig.clinic.records import Records
        from rig.clinic.store import ClinicStore
        from rig.web.database import ReadOnlyDatabase
        self.records = Records(ClinicStore(rig.database.with_name("clinic.sqlite")))
        self.sessions = ReadOnlyDatabase(rig.database)
        found = [p for p in self.records.find(DEMO_PATIENT.name) if p.clinic_id == DEMO_PATIENT.clinic_id]
        self.patient_id = found[0].id if found else self.records.create(DEMO_PATIENT, by=DEMO_USER).id

    def pick(self, step: VisitStep) -> None:
        newest = self.sessions.sessions(limit=1)
        self.records.set_pending(self.patient_id, step.condition, newest[0].session.id if newest else 0, by=DEMO_USER)

    def walked(self, session_id: int) -> None:
        """Give the pick to the session just closed, if the tablet has not already."""
        self.records.claim_pending([session_id])


def _describe(s: dict) -> str:
    frames = ", ".join(f"{v} {n}" for v, n in s["frames"].items())
    cadence = s["cadence_steps_per_min"]
    gait = (f"cadence {cadence:.1f} steps/min" if cadence is not None
            else f"no cadence ({s['analysis_error'] or 'not computed'})")
    findings = "".join(f"\n  - {f}" for f in s["findings"]) or "\n  - no findings"
    return (f"session {s['session_id']}: {s['pulses_sent']} pulses, frames {frames}; "
            f"{'complete' if s['complete'] else 'INCOMPLETE'} ({s['stop_reason']}, {s['duration_s']} s); "
            f"{gait}{findings}")
