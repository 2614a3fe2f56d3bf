"""Fault injection on the simulated rig of ``gaitrig demo`` (the same daemons, as real
processes): SIGKILL and restart any daemon or the broker, a technician's restart command,
a step of one node's wall clock — and the ground truth to judge a walk by: the pulses the
controller sent (the trigger line every camera follows) against what the coordinator
stored (its database). Used by tests/test_faults.py and benchmarks/bench_faults.py.
"""
from __future__ import annotations

import json
import queue
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rig.bus import topics
from rig.bus.payloads import (KeypointFrame, Presence, SessionState, SessionSummary, TreadmillEvent, decode,
                              decode_keypoints, encode_keypoints)
from rig.config import ALL_VIEWS
from rig.demo import DAEMONS, RIG_ID, Rig, Watch
from rig.sim.scene import WalkerScene
from rig.sim.trigger_line import TriggerLine
from rig.sim.walker import WalkerParams

RAMP_S = 0.5
END_GRACE_S = 8.0  # a busy test machine can starve a node's camera loop for seconds
RESEND_WINDOW_S = 5.0  # the test broker saves its state every 1-2 s (rig.sim.broker)
RESTART_WAIT_S = 180.0  # a Python daemon can take a minute to start on a loaded 2-core test machine


@dataclass(frozen=True)
class Outcome:
    """One session as the coordinator stored it, against the pulses the controller sent."""
    session_ids: list[int]  # sessions opened during the walk: one, unless it was split
    pulses: int
    stored: dict[str, list[int]]  # trigger indices stored, per view
    state: str
    complete: bool | None
    report: dict | None
    analysis_error: str | None
    summary: SessionSummary

    @property
    def produced(self) -> int:
        return self.pulses * len(self.stored)

    @property
    def frames_stored(self) -> int:
        return sum(len(v) for v in self.stored.values())

    def missing(self, view: str) -> list[tuple[int, int]]:
        """Spans [first, end) of trigger indices this view has no frame for."""
        have, spans, start = set(self.stored[view]), [], None
        for k in range(self.pulses + 1):
            if k < self.pulses and k not in have:
                start = k if start is None else start
            elif start is not None:
                spans.append((start, k))
                start = None
        return spans


class SessionWatch(Watch):
    """demo's Watch, keeping session states and presence births with their times too."""

    def __init__(self, rig: Rig):
        self.states: queue.Queue[SessionState] = queue.Queue()
        self.births: dict[str, list[float]] = {}
        self.events: list[TreadmillEvent] = []  # the bridge's: link lost/restored, controller reset
        super().__init__(rig)
        self.client.on(topics.TREADMILL_EVENT, lambda msg: self.events.append(decode(TreadmillEvent, msg.payload)))

    def event_after(self, kind: str, t: float, rig: Rig, timeout_s: float = 60.0) -> float:
        """Seconds from wall time ``t`` to the bridge's first ``kind`` event after it."""
        deadline = time.monotonic() + timeout_s
        while not (later := [e.t for e in self.events if e.kind == kind and e.t >= t]):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {kind} event within {timeout_s:.0f} s")
            rig.sleep(0.05)
        return min(later) - t

    def _on_state(self, msg) -> None:
        if not msg.retain:  # a retained one is not news: it comes again on every reconnection
            self.states.put(decode(SessionState, msg.payload))

    def _on_presence(self, msg) -> None:
        super()._on_presence(msg)
        p = decode(Presence, msg.payload)
        if p.online:
            self.births.setdefault(p.daemon, []).append(p.t)

    def born_after(self, daemon: str, t: float, rig: Rig, timeout_s: float = RESTART_WAIT_S) -> float:
        """Seconds from wall time ``t`` to the daemon's first birth after it."""
        deadline = time.monotonic() + timeout_s
        while True:
            later = [b for b in self.births.get(daemon, []) if b >= t]
            if later:
                return min(later) - t
            if time.monotonic() > deadline:
                raise RuntimeError(f"{daemon} did not come back within {timeout_s:.0f} s")
            rig.sleep(0.05)

    def wait_state(self, state: str, rig: Rig, timeout_s: float = 30.0, session_from: int = 0) -> SessionState:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                s = self.states.get(timeout=0.2)
            except queue.Empty:
                rig.check_alive()
                continue
            if s.state == state and (s.session_id or 0) >= session_from:
                return s
        raise RuntimeError(f"the session never became {state!r}")


class FaultRig(Rig):
    """The demo's rig with faults to inject. Daemons we kill on purpose are not crashes."""

    def __init__(self, workdir: Path, fps: float = 60.0, speed_m_s: float = 1.2):
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir, fps, speed_m_s)
        self.watch: SessionWatch | None = None
        self.node_extra: dict[str, str] = {}  # view -> node config lines beyond the rig's own
        self.walking = False  # the belt runs for a walk: a soak samples memory only then

    def node_config(self, view: str) -> Path:
        path = self.workdir / f"node-{view}.toml"
        path.write_text(f'view = "{view}"\nspool_dir = "{self.workdir}"\nresend_window_s = {RESEND_WINDOW_S}\n'
                        f'end_grace_s = {END_GRACE_S}\n{self.node_extra.get(view, "")}'
                        '[camera]\nbackend = "simulated"\n'
                        f'clock_offset_file = "{self.clock_file(view)}"\n'
                        f'[walker]\nbelt_speed_m_s = {self.speed_m_s}\n')
        return path

    def _wait_for(self, path: Path, what: str, timeout_s: float = RESTART_WAIT_S) -> None:
        super()._wait_for(path, what, timeout_s)  # a loaded test machine starts Python slowly

    def clock_file(self, view: str) -> Path:
        return self.workdir / f"clock-offset-{view}"

    def up(self) -> "FaultRig":
        self.start()
        self.watch = SessionWatch(self)
        self.watch.wait_up(self)
        return self

    def down(self) -> None:
        if self.watch:
            self.watch.client.close()
        self.stop()

    # -- faults --------------------------------------------------------------------------------
    def process(self, name: str) -> subprocess.Popen:
        return next(p for n, p in self.procs if n == name)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.process(name)
        self.procs = [(n, p) for n, p in self.procs if n != name]
        proc.send_signal(sig)
        proc.wait(15)

    def restart(self, name: str) -> float:
        """Start a daemon again, as systemd would, and wait until it is back; returns the
        seconds from its start to its birth on MQTT (the recovery time)."""
        t = time.time()
        self._spawn(name, *self.commands[name])
        return self.watch.born_after(name, t, self)

    def restart_by_command(self, name: str) -> float:
        """``gaitrig diag cmd NAME restart``: the daemon stops cleanly with its restart status,
        then is started again as systemd would; returns the seconds from its exit to its
        birth again."""
        from rig.ops.diag import EXIT_RESTART
        proc = self.process(name)
        self.procs = [(n, p) for n, p in self.procs if n != name]
        try:
            r = subprocess.run([sys.executable, "-m", "rig.cli", "diag", "cmd", name, "restart", "--mqtt",
                                f"127.0.0.1:{self.broker.port}", "--rig-id", RIG_ID],
                               capture_output=True, text=True, timeout=RESTART_WAIT_S)
            status = proc.wait(RESTART_WAIT_S)
        finally:
            if proc.poll() is None:  # the command failed: do not leave the rig without the daemon
                proc.kill()
                proc.wait(10)
            recovery = self.restart(name)
        if r.returncode != 0 or status != EXIT_RESTART:
            raise RuntimeError(f"restart command for {name} failed: {r.stderr or status}")
        return recovery

    def kill_broker(self) -> None:
        self.broker.proc.kill()
        self.broker.proc.wait(10)
        self.broker.proc = None

    def start_broker(self) -> float:
        """Start the broker again; returns the seconds until every daemon is connected again."""
        t = time.time()
        self.broker.start()
        return max(self.watch.born_after(d, t, self) for d in DAEMONS)

    def reconfigure_node(self, view: str, extra: str = "") -> float:
        """Stop a node cleanly, start it again with ``extra`` config lines (e.g. a small
        spool); between walks, so nothing is lost. Returns the seconds until it is back."""
        self.kill(f"node-{view}", signal.SIGTERM)
        self.node_extra[view] = extra
        self.node_config(view)
        return self.restart(f"node-{view}")

    def fill_coordinator_disk(self, room_bytes: float) -> None:
        """The coordinator's disk as good as full: its file size limit (RLIMIT_FSIZE, which
        it reads as room left, as free space) set ``room_bytes`` above its largest file."""
        import resource
        files = (self.database, self.database.with_name(self.database.name + "-wal"))
        limit = int(max(f.stat().st_size for f in files if f.exists()) + room_bytes)
        resource.prlimit(self.process("coordinator").pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    def free_coordinator_disk(self) -> None:
        import resource
        inf = resource.RLIM_INFINITY
        resource.prlimit(self.process("coordinator").pid, resource.RLIMIT_FSIZE, (inf, inf))

    def step_clock(self, view: str, seconds: float) -> None:
        self.clock_file(view).write_text(f"{seconds}\n")

    # -- truth ---------------------------------------------------------------------------------
    def pulses(self) -> int:
        line = TriggerLine(self.trigger_line)
        try:
            return line.read().pulses
        finally:
            line.close()

    def walk(self, walk_s: float, fault: Callable[["FaultRig"], object] | None = None,
             close_timeout_s: float = 90.0) -> Outcome:
        """Belt start, ``fault`` once the session records (it returns once the rig is whole
        again), ``walk_s`` more of walking, belt stop, then the session the coordinator
        closed, judged from its database."""
        first = self.last_session_id() + 1
        self.belt(f"start {self.speed_m_s} {RAMP_S}")
        self.watch.wait_state("recording", self, session_from=first)
        self.walking = True
        if fault:
            fault(self)
        self.sleep(walk_s)
        self.belt("stop")
        self.walking = False
        return self.outcome(first, self.next_summary(first, close_timeout_s))

    def next_summary(self, session_from: int, timeout_s: float = 90.0) -> SessionSummary:
        while (summary := self.watch.next_summary(self, timeout_s)).session_id < session_from:
            pass  # an earlier walk's
        return summary

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)

    def last_session_id(self) -> int:
        if not self.database.exists():
            return 0
        with self._db() as db:
            return db.execute("SELECT coalesce(max(id), 0) FROM sessions").fetchone()[0]

    def outcome(self, first_sid: int, summary: SessionSummary) -> Outcome:
        sid = summary.session_id
        with self._db() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM sessions WHERE id >= ? ORDER BY id", (first_sid,))]
            state, pulses, complete = db.execute(
                "SELECT state, pulses_sent, complete FROM sessions WHERE id = ?", (sid,)).fetchone()
            stored = {v: [] for v in ALL_VIEWS}
            for view, idx in db.execute("SELECT view, idx FROM keypoints WHERE session_id = ? ORDER BY idx", (sid,)):
                stored[view].append(idx)
            rep = db.execute("SELECT report, error FROM session_reports WHERE session_id = ?", (sid,)).fetchone()
        report, error = (json.loads(rep[0]) if rep and rep[0] else None), (rep[1] if rep else None)
        return Outcome(ids, pulses or 0, stored, state, None if complete is None else bool(complete), report, error,
                       summary)

    def node_row(self, sid: int, view: str) -> dict:
        with self._db() as db:
            row = db.execute("SELECT frames_received, frames_reported, missed_triggers, dropped FROM session_nodes "
                             "WHERE session_id = ? AND view = ?", (sid, view)).fetchone()
        return dict(zip(("frames_received", "frames_reported", "missed_triggers", "dropped"), row))

    def belt_timeline(self, sid: int) -> list[tuple[float, bool, float]]:
        """The session's belt samples as stored, in arrival order: (t, running, speed m/s)."""
        with self._db() as db:
            return db.execute("SELECT t, running, speed_m_s FROM belt_samples WHERE session_id = ? ORDER BY rowid",
                              (sid,)).fetchall()

    def report_page_text(self, sid: int) -> str:
        """The tablet's report page of a session, as the demo account sees it (HTML)."""
        import html
        import re
        import urllib.error
        import urllib.parse
        import urllib.request

        from rig.demo import DEMO_USER

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **kw):
                return None
        url = f"http://127.0.0.1:{self.web_port}"
        with urllib.request.urlopen(url + "/login", timeout=30) as r:
            nonce = r.headers["Set-Cookie"].split(";")[0]
            csrf = re.search(r'name="csrf" value="([^"]*)"', r.read().decode()).group(1)
        form = urllib.parse.urlencode({"csrf": html.unescape(csrf), "username": DEMO_USER,
                                       "password": self.web_password}).encode()
        try:
            urllib.request.build_opener(NoRedirect).open(
                urllib.request.Request(url + "/login", data=form, headers={"Cookie": nonce}), timeout=30)
            raise RuntimeError("logging in to the tablet pages did not redirect")
        except urllib.error.HTTPError as e:
            if e.code != 303:
                raise
            cookie = e.headers["Set-Cookie"].split(";")[0]
        req = urllib.request.Request(f"{url}/sessions/{sid}", headers={"Cookie": cookie})
        with urllib.request.urlopen(req, timeout=30) as r:
            return html.unescape(r.read().decode())

    def _fault_free(self, sid: int) -> Callable[[str, int], bytes]:
        """The frame a fault-free node sends for (view, trigger index): the walker's landmarks
        for that pulse, at that pulse's time on the rig's clock (the train's, as the node got it)."""
        line = TriggerLine(self.trigger_line)
        rate = line.read().rate_hz
        line.close()
        scenes = {v: WalkerScene(v, WalkerParams(belt_speed_m_s=self.speed_m_s)) for v in ALL_VIEWS}
        with self._db() as db:
            t0 = {v: decode_keypoints(p).t for v, p in db.execute(
                "SELECT view, payload FROM keypoints WHERE session_id = ? AND idx = 0", (sid,))}
        return lambda view, k: encode_keypoints(KeypointFrame(sid, k, t0[view] + k / rate, scenes[view](rate, k),
                                                              True))

    def payload_mismatches(self, sid: int) -> int:
        """Stored frames that differ from what a fault-free node sends for their trigger index."""
        expected = self._fault_free(sid)
        with self._db() as db:
            rows = db.execute("SELECT view, idx, payload FROM keypoints WHERE session_id = ?", (sid,)).fetchall()
        return sum(payload != expected(view, idx) for view, idx, payload in rows)

    def reference_report(self, sid: int, walking_min_m_s: float = 0.3) -> dict | None:
        """The gait report of a fault-free run of this walk: the same session (train, belt
        samples, cameras) holding, for every pulse, the frame a fault-free node sends,
        analysed as the coordinator does."""
        from rig.coordinator.analysis import analyze_session
        from rig.coordinator.storage import Storage
        expected = self._fault_free(sid)
        with self._db() as db:
            fps, first, pulses = db.execute("SELECT fps, first_pulse_t, pulses_sent FROM sessions WHERE id = ?",
                                            (sid,)).fetchone()
            belt = db.execute("SELECT t, running, speed_m_s, incline_pct, estop FROM belt_samples "
                              "WHERE session_id = ?", (sid,)).fetchall()
            infos = db.execute("SELECT view, payload FROM node_info").fetchall()
        ref = Storage(":memory:")
        rid = ref.open_session("reference", 0.0, fps, list(ALL_VIEWS))
        ref.set_train(rid, first, pulses)
        for sample in belt:
            ref.add_belt_sample(rid, *sample)
        for view, info in infos:
            ref.set_node_info(view, info)
        for view in ALL_VIEWS:
            for k in range(pulses):
                ref.add_frame(rid, view, k, expected(view, k))
        report = analyze_session(ref, rid, walking_min_m_s).report
        ref.close()
        return report
