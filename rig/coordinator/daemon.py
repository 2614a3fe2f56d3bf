"""The coordinator daemon: a thin shell that feeds MQTT events to the SessionMachine,
carries out its actions (arm/disarm over MQTT, SQLite writes, session state and summary)
and stores every keypoint frame.

paho's network thread only decodes and queues; one worker thread owns the database
and the state machine, so no locks are needed around either.

Nothing is lost to a restart of the coordinator (a crash, or a technician's restart): its
MQTT session is persistent, so the broker queues what arrives while it is down, and a
message is acknowledged only once the transaction holding it is committed — a message in
flight at a crash is delivered again, and storing is idempotent. On start-up an open
session is resumed (same id, same frames), so a walk is never split nor left open.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid

from rig.bus import topics
from rig.bus.client import BusClient, Receipt
from rig.bus.payloads import (BeltState, CommandReply, NodeEnd, NodeInfo, SessionCommand, SessionState,
                              SessionSummary, TreadmillCommand, TriggerState, decode, decode_keypoints)
from rig.config import CoordinatorConfig
from rig.coordinator import sessions as sm
from rig.coordinator.analysis import analyze_session
from rig.coordinator.storage import Storage
from rig.ops import notify
from rig.ops.diag import DiagAgent
from rig.ops.diag_hooks import coordinator_hooks

log = logging.getLogger(__name__)
COMMIT_EVERY_S = 0.05  # and acknowledge what it holds: the broker keeps the rest until then
COMMIT_BATCH = 200
REPLY_TIMEOUT_S = 3.0  # no reply from the bridge by then: send again
COMMAND_RETRY_S = 0.5
WATCHDOG_STALL_S = 10.0
TICK_S = 0.1


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
        self.session_frames: dict[str, int] = {}  # frames stored per view, current or last session
        self.last_session_id: int | None = None
        self._unacked: list[Receipt] = []  # handled, acknowledged at the next commit
        self._subscribe()
        self.diag = DiagAgent(self.bus, config, coordinator_hooks(self))

    def _subscribe(self) -> None:
        route = {
            topics.TREADMILL_STATE: lambda m: ("belt", decode(BeltState, m.payload)),
            topics.TREADMILL_TRIGGER: lambda m: ("trigger", decode(TriggerState, m.payload)),
            topics.TREADMILL_CMD_REPLY: lambda m: ("reply", decode(CommandReply, m.payload)),
            topics.SESSION_CMD: lambda m: ("command", decode(SessionCommand, m.payload)),
            topics.NODE_END: lambda m: ("end", decode(NodeEnd, m.payload)),
            topics.NODE_INFO: lambda m: ("info", (m.topic, decode(NodeInfo, m.payload))),
            topics.NODE_KEYPOINTS: lambda m: ("frame", (m.topic, m.payload, decode_keypoints(m.payload))),
        }
        for topic, parse in route.items():
            self.bus.on(topic, lambda m, parse=parse: self.inbox.put((*parse(m), self.bus.receipt(m))), keep=True)

    # -- lifecycle ------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.storage = Storage(self.config.storage.database)
        resend = self._resume_unfinished()
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
            self._commit()
            self.storage.close()
            self.bus.close()
        self.diag.exit_if_restart()

    def _loop(self, stop: threading.Event, live: notify.Liveness) -> None:
        last_commit = time.monotonic()
        while not stop.is_set():
            try:
                kind, payload, *receipt = self.inbox.get(timeout=TICK_S)
                self._handle(kind, payload)
                self._unacked += receipt
            except queue.Empty:
                pass
            self._do(self.machine.tick(time.time()))
            self._retry_commands()
            if time.monotonic() - last_commit >= COMMIT_EVERY_S or len(self._unacked) >= COMMIT_BATCH:
                self._commit()
                last_commit = time.monotonic()
            live.beat()  # a hung database or state machine stops the watchdog pings

    def _commit(self) -> None:
        """Commit, then tell the broker it may forget what the commit holds."""
        self.storage.commit()
        for receipt in self._unacked:
            self.bus.ack(receipt)
        self._unacked.clear()

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
        actions = self.machine.resume(
            time.time(), sm.Phase(row.state), manual=row.start_reason == sm.MANUAL_START,
            stop_reason=row.stop_reason, train_started=row.first_pulse_t is not None, pulses_sent=row.pulses_sent,
            ends={n.view: n.frames_reported for n in nodes if n.frames_reported is not None}, received=received)
        self.session_id = self.last_session_id = row.id
        self.session_frames = received
        log.warning("session %d was %s when the coordinator stopped; resuming it with %s frames stored",
                    row.id, row.state, sum(received.values()))
        return actions

    # -- events ---------------------------------------------------------------------------------
    def _handle(self, kind: str, payload) -> None:
        now = time.time()
        if kind == "frame":
            self._frame(*payload)
        elif kind == "belt":
            if self.belt is not None and payload.t < self.belt.t:
                return  # older than what we have: a retained state a crashed broker restored
            self.belt = payload
            self._belt_sample()
            self._do(self.machine.belt(now, payload.running, payload.speed_m_s, payload.estop))
        elif kind == "trigger":
            if self.session_id is not None and payload.armed:
                self.storage.set_train(self.session_id, payload.first_pulse_t, None)
            self._do(self.machine.trigger(now, payload.armed, payload.pulses_sent))
        elif kind == "end":
            self._node_end(now, payload)
        elif kind == "command":
            log.info("session command %s by %s", payload.action, payload.by)
            self._do(self.machine.command(now, payload.action))
        elif kind == "reply":
            self._on_reply(payload)
        elif kind == "diag":  # a diagnostics check that needs the worker's own database connection
            payload(self.storage)
        elif kind == "info":
            topic, info = payload
            self.storage.set_node_info(topics.NODE_INFO.fields(self.bus.rig_id, topic)["view"], info.model_dump_json())

    def _belt_sample(self) -> None:
        b = self.belt
        if self.session_id is not None and b is not None:
            self.storage.add_belt_sample(self.session_id, b.t, b.running, b.speed_m_s, b.incline_pct, b.estop)

    def _frame(self, topic: str, raw: bytes, frame) -> None:
        view = topics.NODE_KEYPOINTS.fields(self.bus.rig_id, topic)["view"]
        if view not in self.config.session.views:
            log.debug("frame from unconfigured view %s ignored", view)
            return
        if self.storage.session(frame.session_id) is None:
            log.warning("frame for unknown session %d from %s dropped", frame.session_id, view)
            return
        if self.storage.add_frame(frame.session_id, view, frame.index, raw) and frame.session_id == self.session_id:
            self.machine.frame_received(view)
            self.session_frames[view] = self.session_frames.get(view, 0) + 1

    def _node_end(self, now: float, end: NodeEnd) -> None:
        if self.storage.session(end.session_id) is None:
            return
        self.storage.node_end(end.session_id, end.view, end.frames, end.captured, end.missed_triggers,
                              end.dropped, end.simulated)
        if end.session_id == self.session_id:
            self._do(self.machine.node_end(now, end.view, end.frames))

    # -- actions ----------------------------------------------------------------------------------
    def _do(self, actions: list[sm.Action]) -> None:
        for action in actions:
            match action:
                case sm.OpenSession(reason):
                    self.session_id = self.storage.open_session(reason, time.time(), self.config.session.fps,
                                                                self.config.session.views)
                    log.info("session %d started (%s)", self.session_id, reason)
                    self.session_frames, self.last_session_id = {}, self.session_id
                    self._belt_sample()
                    self._publish_state("recording", reason=reason)
                case sm.Arm(rate_hz):
                    self._command("arm", rate_hz)
                case sm.Disarm():
                    self._command("disarm")
                case sm.BeginClosing(reason, pulses):
                    self.storage.set_train(self.session_id, None, pulses)
                    self.storage.mark_closing(self.session_id, reason)
                    log.info("session %d closing (%s): %d pulses sent", self.session_id, reason, pulses)
                    self._publish_state("closing", reason=reason, pulses_sent=pulses)
                case sm.FinishSession():
                    self._finish(action)

    def _finish(self, action: sm.FinishSession) -> None:
        sid = self.session_id
        self.storage.close_session(sid, time.time(), action.complete)
        analyze_session(self.storage, sid, self.config.session.walking_speed_min_m_s)
        self.storage.commit()
        summary = self.summary(sid)
        if action.problem:
            lost = {v: s for v, s in summary.missing.items() if s}
            log.warning("session %d closed incomplete: %s; trigger indices missing: %s", sid, action.problem, lost)
        else:
            log.info("session %d closed: %s frames", sid, summary.frames)
        self.bus.send(topics.SESSION_SUMMARY, summary)
        self.session_id = None
        self._publish_state("idle", reason=self.machine.stop_reason)

    def _analysis_fields(self, sid: int) -> dict:
        stored = self.storage.report(sid)
        if stored is None:
            return {}
        report_json, error = stored
        report = json.loads(report_json) if report_json else None
        return {"belt_speed_m_s": report["belt_speed_m_s"] if report else None,
                "cadence_steps_per_min": report["spatiotemporal"]["cadence_steps_per_min"] if report else None,
                "findings": [f["text"] for f in report["findings"]] if report else [],
                "analysis_error": error}

    def summary(self, sid: int) -> SessionSummary:
        row = self.storage.session(sid)
        pulses = row.pulses_sent or 0
        nodes = self.storage.nodes(sid)
        return SessionSummary(
            session_id=sid, started_t=row.started_t, ended_t=row.ended_t or time.time(),
            reason=row.stop_reason or "", pulses_sent=pulses,
            frames={n.view: n.frames_received for n in nodes},
            dropped={n.view: max(pulses - n.frames_received, 0) for n in nodes},
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
