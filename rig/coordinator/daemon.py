"""The coordinator daemon: a thin shell that feeds MQTT events to the SessionMachine,
carries out its actions (arm/disarm over MQTT, SQLite writes, session state and summary)
and stores every keypoint frame.

paho's network thread only decodes and queues; one worker thread owns the database
and the state machine, so no locks are needed around either. Whatever a message holds, the
worker keeps running: a message the intake rules refuse is counted by kind, a failed
database write (a full disk) rolls back to the last commit and the frames it held are
counted as lost and announced on diagnostics, and anything unexpected is logged.

Nothing is lost to a restart of the coordinator (a crash, or a technician's restart): its
MQTT session is persistent, so the broker queues what arrives while it is down, and a
message is acknowledged only once the transaction holding it is committed — a message in
flight at a crash is delivered again, and storing is idempotent. On start-up an open
session is resumed (same id, same frames), so a walk is never split nor left open.
"""
from __future__ import annotations

import json
import logging
import math
import queue
import sqlite3
import threading
import time
import uuid
from collections import Counter

from rig.bus import topics
from rig.bus.client import BusClient, Receipt
from rig.bus.payloads import (ERASED_MAX, BeltState, CommandReply, DiagHealth, ErasedSessions, NodeEnd,
                              NodeInfo, PayloadError, SessionCommand, SessionState, SessionSummary, TreadmillCommand,
                              TriggerState, clip, decode, decode_keypoints)
from rig.clinic.store import erased_session_ids
from rig.config import CoordinatorConfig
from rig.coordinator import intake
from rig.coordinator import sessions as sm
from rig.coordinator.analysis import analyze_pending, analyze_session, load_rig_calibration
from rig.coordinator.diagnostics import coordinator_hooks
from rig.coordinator.diskguard import DiskGuard
from rig.coordinator.storage import Storage
from rig.coordinator.tally import Counts, Tally
from rig.ops import notify
from rig.ops.diag import DiagAgent

log = logging.getLogger(__name__)
COMMIT_EVERY_S = 0.05  # and acknowledge what it holds: the broker keeps the rest until then
COMMIT_BATCH = 200
REPLY_TIMEOUT_S = 3.0  # no reply from the bridge by then: send again
COMMAND_RETRY_S = 0.5
WATCHDOG_STALL_S = 10.0
TICK_S = 0.1
ERASURE_POLL_S = 1.0  # how often the clinic file is read for sessions erased with their patient


class Coordinator:
    def __init__(self, config: CoordinatorConfig):
        self.config = config
        self.machine = sm.SessionMachine(config.session)
        self.bus = BusClient(config.mqtt, "coordinator", persistent_session=True)
        self.inbox: queue.Queue = queue.Queue()
        self.session_id: int | None = None
        self.belt: BeltState | None = None
        self._pending: dict[str, tuple[TreadmillCommand, float]] = {}  # id -> (command, retry at)  # the latest, so a session's profile starts at its start
        self.storage: Storage | None = None
        self.cameras = None  # the rig calibration, read at start: 3D reports; None: 2D
        self.session_frames: dict[str, int] = {}  # frames stored per view, current or last session
        self.last_session_id: int | None = None
        self.train: intake.Train | None = None  # the open session's trigger train, to bound frame indices
        self.disk = DiskGuard(lambda: self.storage, config.storage.reserve_mb * 1e6, self._frames_lost)
        self.internal_errors = 0
        self.tally = Tally()  # conflicts, lost frames and rejections per session, until committed
        self._rejected_seen: Counter[str] = Counter()  # the bus's rejections already attributed
        self._unacked: list[Receipt] = []  # handled, acknowledged at the next commit
        self.erased: set[int] = set()  # sessions erased with their patient, applied here
        self.erased_published = False
        self._subscribe()
        self.diag = DiagAgent(self.bus, config, coordinator_hooks(self))

    def _subscribe(self) -> None:
        route = {
            topics.TREADMILL_STATE: lambda m: ("belt", decode(BeltState, m.payload)),
            topics.TREADMILL_TRIGGER: lambda m: ("trigger", decode(TriggerState, m.payload)),
            topics.TREADMILL_CMD_REPLY: lambda m: ("reply", decode(CommandReply, m.payload)),
            topics.SESSION_CMD: lambda m: ("command", decode(SessionCommand, m.payload)),
            topics.NODE_END: lambda m: ("end", (m.topic, decode(NodeEnd, m.payload))),
            topics.NODE_INFO: lambda m: ("info", (m.topic, decode(NodeInfo, m.payload))),
            topics.NODE_KEYPOINTS: lambda m: ("frame", (m.topic, m.payload, decode_keypoints(m.payload))),
        }
        for topic, parse in route.items():
            self.bus.on(topic, lambda m, parse=parse: self.inbox.put((*parse(m), self.bus.receipt(m))), keep=True)
        # the nodes' health (QoS 0, every few seconds): their drops, live, for the tablet
        self.bus.on(topics.DIAG_HEALTH, lambda m: self.inbox.put(("health", (m.topic, decode(DiagHealth, m.payload)))))

    # -- lifecycle ------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.storage = Storage(self.config.storage.database)
        self.cameras = load_rig_calibration(self.config.analysis.calibration)
        resend = self._resume_unfinished()
        self._guarded("analysis", analyze_pending, self.storage, self.config.session.walking_speed_min_m_s,
                      self.cameras)
        self.bus.start()
        self._publish_state(self.machine.phase.value, reason=self.machine.stop_reason)
        self._do(resend)
        self.diag.start(stop)
        live = notify.Liveness(stall_after_s=WATCHDOG_STALL_S)
        try:
            with notify.Watchdog(live):
                notify.ready("idle")
                self._loop(stop, live)
        finally:
            notify.stopping()
            self.diag.close()
            self._guarded("commit", self._commit)
            self.storage.close()
            self.bus.close()
        self.diag.exit_if_restart()

    def _loop(self, stop: threading.Event, live: notify.Liveness) -> None:
        last_commit = last_erasure = time.monotonic() - ERASURE_POLL_S
        while not stop.is_set():
            try:
                kind, payload, *receipt = self.inbox.get(timeout=TICK_S)
                self._guarded(_source(kind, payload), self._handle, kind, payload)
                self._unacked += receipt
            except queue.Empty:
                pass
            self._guarded("tick", lambda: self._do(self.machine.tick(time.time())))
            self._retry_commands()
            if time.monotonic() - last_erasure >= ERASURE_POLL_S:
                self._guarded("erasure", self._erase)
                last_erasure = time.monotonic()
            if time.monotonic() - last_commit >= COMMIT_EVERY_S or len(self._unacked) >= COMMIT_BATCH:
                self._guarded("commit", self._commit)
                self.disk.retry()
                last_commit = time.monotonic()
            live.beat()  # a hung database or state machine stops the watchdog pings

    def _erase(self) -> None:
        """Apply the sessions the clinic file lists as erased (their patient was erased): delete
        their rows in one transaction of their own, then tell the nodes, retained, so a node
        that is off deletes their video when it is back. The session being recorded waits
        until it is closed."""
        listed = erased_session_ids(self.config.web.clinic_path(self.config.storage.database))
        due = sorted(listed - self.erased - {self.session_id})
        if not due and self.erased_published:
            return
        if due:
            self._commit()  # what is pending goes first: the erasure is its own transaction
            summarised = max((r.id for r in self.storage.sessions(2) if r.state == "closed"), default=None)
            here = self.storage.erase_sessions(due)
            self.storage.commit()
            self.erased.update(due)
            log.info("erased %d sessions with their patient (%d had recordings here)", len(due), here)
            if summarised in due:  # the retained summary is of it: its findings must not stay on the broker
                self.bus.publish(topics.SESSION_SUMMARY.path(self.bus.rig_id), b"", qos=1, retain=True)
        ids = sorted(self.erased)[-ERASED_MAX:]
        self.bus.send(topics.SESSION_ERASED, ErasedSessions(t=time.time(), session_ids=ids))
        self.erased_published = True

    def _commit(self) -> None:
        """Commit (with the sessions' counts of what went wrong), then tell the broker it may
        forget what the commit holds."""
        self._attribute_rejections()
        counts = self.tally.snapshot()
        self.storage.add_counts(counts)
        self.storage.commit()
        self.tally.saved(counts)
        for receipt in self._unacked:
            self.bus.ack(receipt)
        self._unacked.clear()

    def _attribute_rejections(self) -> None:
        """Rejections the bus counted since the last commit go to the session being recorded."""
        now = self.bus.rejections()
        for kind, n in (now - self._rejected_seen).items():
            self.tally.add(self.session_id, "rejected", kind, n)
        self._rejected_seen = now

    def _resume_unfinished(self) -> list[sm.Action]:
        """Take up the session a previous run left open; returns the commands to send again.
        The retained belt state and the messages the broker queued meanwhile then either let
        it go on recording or close it, with its frames, and analyse it."""
        rows = sorted(self.storage.unfinished_sessions(), key=lambda r: r.id)
        for row in rows[:-1]:  # at most one is ever open; more come only from an older gaitrig
            log.warning("session %d was left open by an older run; closing it as incomplete", row.id)
            self.storage.mark_closing(row.id, "coordinator restarted")
            self.storage.close_session(row.id, time.time(), complete=False)
        if not rows:
            return []
        row, nodes = rows[-1], self.storage.nodes(rows[-1].id)
        received = {n.view: n.frames_received for n in nodes}
        counts = Counts.of(self.storage.counts(row.id))
        actions = self.machine.resume(
            time.time(), sm.Phase(row.state), manual=row.start_reason == sm.MANUAL_START,
            stop_reason=row.stop_reason, train_started=row.first_pulse_t is not None, pulses_sent=row.pulses_sent,
            ends={n.view: n.frames_reported for n in nodes if n.frames_reported is not None}, received=received,
            conflicts=counts.conflicts, lost=counts.frames_lost, last_index=self.storage.last_index(row.id))
        self.session_id = self.last_session_id = row.id
        self.session_frames = received
        log.warning("session %d was %s when the coordinator stopped; resuming it with %s frames stored",
                    row.id, row.state, sum(received.values()))
        return actions

    # -- failures ------------------------------------------------------------------------------
    def _guarded(self, source: str, fn, *args) -> None:
        """Run one step of the worker; no message and no failed write may stop the daemon."""
        try:
            fn(*args)
        except PayloadError as e:
            self.bus.count_rejection(e, source)
        except sqlite3.Error as e:
            self.disk.failed(e)
        except Exception:  # a bug must cost one message, not the daemon
            self.internal_errors += 1
            if self.internal_errors <= 10:
                log.exception("internal error handling %s (%d so far)", source, self.internal_errors)

    def _frames_lost(self, sid: int, view: str, n: int) -> None:
        """Frames received but lost to the disk: the session counts them as gone for good."""
        self.tally.add(sid, "frames_lost", view, n)
        if sid == self.session_id:
            self.machine.frames_lost(view, n)
            self.session_frames[view] = self.session_frames.get(view, 0) - n

    # -- events ---------------------------------------------------------------------------------
    def _handle(self, kind: str, payload) -> None:
        now = time.time()
        if kind == "frame":
            self._frame(now, *payload)
        elif kind == "belt":
            if self.belt is not None and payload.t < self.belt.t:
                return  # older than what we have: a retained state a crashed broker restored
            self.belt = payload
            self._belt_sample()
            self._do(self.machine.belt(now, payload.running, payload.speed_m_s, payload.estop))
        elif kind == "trigger":
            train = self._current_train()
            if train is not None and payload.armed:
                train.report(payload)
                self.disk.durable(self.storage.set_train, self.session_id, payload.first_pulse_t, None)
            if not intake.ends_train(train, payload):
                return  # a rebooted controller's "no train, 0 pulses": not this session's count
            self._do(self.machine.trigger(now, payload.armed, payload.pulses_sent, lost=payload.train_lost))
        elif kind == "end":
            self._node_end(now, *payload)
        elif kind == "command":
            log.info("session command %s by %s", payload.action, clip(payload.by, 64))
            self._do(self.machine.command(now, payload.action))
        elif kind == "reply":
            self._on_reply(payload)
        elif kind == "diag":  # a diagnostics check that needs the worker's own database connection
            payload(self.storage)
        elif kind == "health":
            topic, health = payload
            daemon = topics.DIAG_HEALTH.fields(self.bus.rig_id, topic)["daemon"]
            h = intake.node_health(daemon, health, self.config.session.views)
            if h is not None:
                self.disk.durable(self.storage.set_node_health, h.view, h.t, h.session_id, h.frames_out, h.missed,
                                  h.dropped)
        elif kind == "info":
            topic, info = payload
            view = topics.NODE_INFO.fields(self.bus.rig_id, topic)["view"]
            intake.check_info(view, info)
            self.disk.durable(self.storage.set_node_info, view, info.model_dump_json())

    def _belt_sample(self) -> None:
        b = self.belt
        if self.session_id is not None and b is not None:
            self.storage.add_belt_sample(self.session_id, b.t, b.running, b.speed_m_s, b.incline_pct, b.estop)

    def _current_train(self) -> intake.Train | None:
        """The open session's train, rebuilt from its row when the session changed (or was
        resumed after a restart)."""
        if self.session_id is None:
            return None
        if self.train is None or self.train.session_id != self.session_id:
            row = self.storage.session(self.session_id)
            self.train = intake.Train(row.id, row.started_t, row.fps, row.first_pulse_t,
                                      final_pulses=row.pulses_sent if row.state == "closing" else None)
        return self.train

    def _frame(self, now: float, topic: str, raw: bytes, frame) -> None:
        view = topics.NODE_KEYPOINTS.fields(self.bus.rig_id, topic)["view"]
        intake.check_frame(view, frame, self.config.session.views, self.session_id, self._current_train(), now)
        if self.disk.paused:
            if not self.storage.has_frame(frame.session_id, view, frame.index):
                self.disk.refuse_frame(frame.session_id, view)
            return
        status = self.storage.add_frame(frame.session_id, view, frame.index, raw)
        if status == "stored":
            self.machine.frame_received(view, time.time(), frame.index)
            self.session_frames[view] = self.session_frames.get(view, 0) + 1
            self.disk.frame_stored()
        elif status == "conflict":
            self.machine.frame_conflict(view)
            self.tally.add(frame.session_id, "conflicts", view)
            raise PayloadError("frame_conflict", f"frame {frame.index} from {view} differs from the one stored "
                               "for that index; the first is kept")

    def _node_end(self, now: float, topic: str, end: NodeEnd) -> None:
        view = topics.NODE_END.fields(self.bus.rig_id, topic)["view"]
        intake.check_end(view, end, self.config.session.views, self.session_id)
        self.disk.durable(self.storage.node_end, end.session_id, view, end.frames, end.captured,
                          end.missed_triggers, end.dropped, end.simulated)
        self._do(self.machine.node_end(now, view, end.frames))

    # -- actions ----------------------------------------------------------------------------------
    def _do(self, actions: list[sm.Action]) -> None:
        for action in actions:
            match action:
                case sm.OpenSession(reason):
                    self.session_id = self.disk.durable(self.storage.open_session, reason, time.time(),
                                                        self.config.session.fps, self.config.session.views,
                                                        defer=False)
                    if self.session_id is None:
                        log.error("no session recorded: the database refuses writes (%s)", self.disk.problem)
                        continue
                    self.disk.session_opened()
                    log.info("session %d started (%s)", self.session_id, reason)
                    self.session_frames, self.last_session_id = {}, self.session_id
                    self._belt_sample()
                    self._publish_state("recording", reason=reason)
                case sm.Arm(rate_hz):
                    self._command("arm", rate_hz)
                case sm.Disarm():
                    self._command("disarm")
                case sm.BeginClosing(reason, pulses):
                    self._current_train().final_pulses = pulses
                    self.disk.durable(self.storage.set_train, self.session_id, None, pulses)
                    self.disk.durable(self.storage.mark_closing, self.session_id, reason)
                    log.info("session %d closing (%s): %d pulses sent", self.session_id, reason, pulses)
                    self._publish_state("closing", reason=reason, pulses_sent=pulses)
                case sm.FinishSession():
                    self._finish(action)

    def _finish(self, action: sm.FinishSession) -> None:
        """Close, analyse (with any earlier session whose analysis never ran), announce. The
        session goes idle even if the database refuses every write."""
        sid = self.session_id
        if sid is None:  # the database refused to open it
            self._publish_state("idle", reason=self.machine.stop_reason)
            return
        try:
            if action.final_pulses is not None:  # a train lost to a reset: the frames' count, not the bound
                log.warning("session %d: the train died with a controller reset; %d pulses by the frames stored",
                            sid, action.final_pulses)
                self.disk.durable(self.storage.set_train, sid, None, action.final_pulses)
            self.disk.durable(self.storage.close_session, sid, time.time(), action.complete)
            walking_min = self.config.session.walking_speed_min_m_s
            self._guarded("analysis", analyze_session, self.storage, sid, walking_min, self.cameras)
            self._guarded("analysis", analyze_pending, self.storage, walking_min, self.cameras)
            self._guarded("commit", self._commit)
            summary = self.summary(sid, action.problem)
            if action.problem:
                lost = {v: s for v, s in summary.missing.items() if s}
                log.warning("session %d closed incomplete: %s; trigger indices missing: %s", sid, action.problem, lost)
            else:
                log.info("session %d closed: %s frames", sid, summary.frames)
            self.bus.send(topics.SESSION_SUMMARY, summary)
            self.diag.report_now()
        finally:
            self.session_id = None
            self._publish_state("idle", reason=self.machine.stop_reason)

    def _analysis_fields(self, sid: int) -> dict:
        stored = self.storage.report(sid)
        if stored is None:
            return {"analysis_error": "not analysed yet: the database refused the report; retried at the next close"}
        report_json, error = stored
        report = json.loads(report_json) if report_json else None
        return {"belt_speed_m_s": _finite(report["belt_speed_m_s"]) if report else None,
                "cadence_steps_per_min": _finite(report["spatiotemporal"]["cadence_steps_per_min"]) if report else None,
                "findings": [clip(f["text"], 1000) for f in report["findings"]][:64] if report else [],
                "analysis_error": clip(error, 1000) if error else None}

    def summary(self, sid: int, problem: str | None = None) -> SessionSummary:
        """The summary of a session from the database (with the counts not yet committed)."""
        row = self.storage.session(sid)
        pulses = row.pulses_sent or 0
        nodes = self.storage.nodes(sid)
        counts = Counts.of(self.storage.counts(sid) + self.tally.pending(sid))
        return SessionSummary(
            session_id=sid, started_t=row.started_t, ended_t=row.ended_t or time.time(),
            reason=clip(row.stop_reason or "", 1000), pulses_sent=pulses,
            frames={n.view: n.frames_received for n in nodes},
            dropped={n.view: max(pulses - n.frames_received, 0) for n in nodes},
            problem=clip(problem, 1000) if problem else None,
            conflicts=counts.conflicts, frames_lost=counts.frames_lost,
            rejected=dict(sorted(counts.rejected.items(), key=lambda kv: -kv[1])[:64]),
            missing={n.view: self.storage.missing_spans(sid, n.view, pulses) for n in nodes},
            **self._analysis_fields(sid),
            complete=bool(row.complete))

    def _command(self, cmd: str, rate_hz: float | None = None) -> None:
        command = TreadmillCommand(id=f"{cmd}-{self.session_id}-{uuid.uuid4().hex[:8]}", cmd=cmd, rate_hz=rate_hz)
        self._pending[command.id] = (command, time.monotonic() + REPLY_TIMEOUT_S)
        self.bus.send(topics.TREADMILL_CMD, command)

    def _on_reply(self, reply: CommandReply) -> None:
        """A failed arm or disarm is sent again while the session still needs it: the bridge
        refuses commands at once while the serial line is down, rather than queueing them."""
        entry = self._pending.pop(reply.id, None)
        if reply.ok or entry is None or "ALREADY_ARMED" in (reply.error or ""):
            log.info("controller replied to %s: %s", reply.id, "ok" if reply.ok else reply.error)
            return
        log.warning("controller refused %s (%s); retrying in %.1f s", reply.id, reply.error, COMMAND_RETRY_S)
        self._pending[reply.id] = (entry[0], time.monotonic() + COMMAND_RETRY_S)

    def _retry_commands(self) -> None:
        """Resend what failed or was never answered, if the session still wants it."""
        now = time.monotonic()
        for cmd_id, (command, due) in list(self._pending.items()):
            if due > now:
                continue
            del self._pending[cmd_id]
            wanted = (self.machine.phase is sm.Phase.RECORDING if command.cmd == "arm"
                      else self.machine.awaiting_train_end)
            if wanted:
                self._command(command.cmd, command.rate_hz)

    def _publish_state(self, state: str, reason: str | None = None, pulses_sent: int | None = None) -> None:
        notify.status(f"{state} session {self.session_id}" if self.session_id else state)
        self.bus.send(topics.SESSION_STATE, SessionState(
            t=time.time(), state=state, session_id=self.session_id, reason=reason,
            views=self.config.session.views if state != "idle" else [], pulses_sent=pulses_sent))


def _source(kind: str, payload) -> str:
    """Where an inbox message came from, for the rejection log: its topic when it has one."""
    return payload[0] if kind in ("frame", "end", "info", "health") else kind


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
