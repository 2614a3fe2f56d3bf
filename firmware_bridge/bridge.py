"""The bridge daemon: puts the treadmill controller on MQTT.

Serial → MQTT: belt state (retained, on change), trigger-train state (retained, every
controller report, first pulse in host Unix time), events (emergency stop, faults, link
lost/restored, controller silent/back) and the link's health (retained, on change and
every ~2 s). MQTT → serial: arm/disarm/ping/status commands, de-duplicated by command id
(QoS 1 may redeliver), each answered by a CommandReply once the controller has ACKed or
refused it. After every (re)connect, controller restart or sequence gap (a frame lost to
line noise may have been the emergency stop) the bridge asks the controller for its full
status, so the state on MQTT is right again at once rather than at the next periodic report.
After a broker crash the bridge's retained state (belt, train, link) is published again on
reconnect (``BusClient(republish_retained=True)``): the belt state is sent on change only,
so a broker that lost it would otherwise hold none until the belt next changes.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from firmware_bridge.diagnostics import bridge_hooks
from firmware_bridge.link import SerialLink
from firmware_bridge.protocol import messages as m
from rig.bus import topics
from rig.ops import notify
from rig.bus.client import BusClient
from rig.bus.payloads import (BeltState, CommandReply, LinkState, TreadmillCommand, TreadmillEvent,
                              TriggerState, decode)
from rig.config import BridgeConfig
from rig.ops.diag import DiagAgent

log = logging.getLogger(__name__)
LINK_REPORT_S = 2.0
REMEMBERED_IDS = 256
QUEUE_MAX = 64


@dataclass(frozen=True)
class _Job:
    id: str | None  # MQTT command id; None for the bridge's own status requests
    msg: m.Message


class Bridge:
    """``Bridge(config).run(stop_event)`` blocks until the event is set; or ``start()`` and
    ``stop()`` around other work (tests, the demo)."""

    def __init__(self, config: BridgeConfig, *, simulated: bool = False):
        self.config = config
        self.bus = BusClient(config.mqtt, "bridge", simulated=simulated, republish_retained=True)
        self.link = SerialLink(config.serial, on_message=self._on_message, on_link=self._on_link,
                               on_silent=self._on_silent, on_reset=self._on_reset,
                               on_gap=self._request_status)
        self._jobs: queue.Queue[_Job | None] = queue.Queue(QUEUE_MAX)
        self._worker = threading.Thread(target=self._work, name="bridge-commands", daemon=True)
        self._lock = threading.Lock()
        self._replies: OrderedDict[str, CommandReply | None] = OrderedDict()
        self._belt: BeltState | None = None
        self._belt_refresh = True
        self._triggers = 0  # TriggerState reports received (to check ARM/DISARM took)
        self._trigger: TriggerState | None = None
        self._link_key: tuple | None = None
        self._was_lost = False
        self._status_queued = threading.Event()  # one status request waiting is enough
        self.diag = DiagAgent(self.bus, config, bridge_hooks(self))

    @property
    def belt(self) -> BeltState | None:
        """The last belt state published on MQTT; None before the controller's first report."""
        return self._belt

    @property
    def trigger(self) -> TriggerState | None:
        """The last trigger-train state published on MQTT; None before the first report."""
        return self._trigger

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, mqtt_wait_s: float = 10.0, stop: threading.Event | None = None) -> "Bridge":
        """``stop``: the event that ends ``run``; without it a diag restart is refused."""
        self.bus.start(wait_s=mqtt_wait_s)
        self.bus.on(topics.TREADMILL_CMD, self._on_command)
        self._worker.start()
        self.link.start()
        self.publish_link(force=True)
        self.diag.start(stop)
        return self

    def stop(self) -> None:
        self.diag.close()
        self.link.stop()
        self._jobs.put(None)
        self._worker.join(5)
        self.publish_link(force=True, connected=False)
        self.bus.close()

    def run(self, stop: threading.Event) -> None:
        self.start(stop=stop)
        log.info("bridge running: serial %s, MQTT %s:%d, rig %s", self.link.port,
                 self.config.mqtt.host, self.config.mqtt.port, self.config.mqtt.rig_id)
        live = notify.Liveness(stall_after_s=3 * LINK_REPORT_S)
        try:
            with notify.Watchdog(live):
                notify.ready(f"serial {self.link.port}")
                while not stop.wait(LINK_REPORT_S):
                    self.publish_link(force=True)
                    if self._worker.is_alive() and self.link.alive:
                        live.beat()
        finally:
            notify.stopping()
            self.stop()
            log.info("bridge stopped")
        self.diag.exit_if_restart()

    # -- MQTT → serial --------------------------------------------------------------------------
    def _on_command(self, msg) -> None:
        cmd = decode(TreadmillCommand, msg.payload)  # PayloadError: counted by BusClient
        if cmd.cmd == "arm" and cmd.rate_hz is None:
            self._reply(cmd.id, False, "arm needs rate_hz")
            return
        with self._lock:
            if cmd.id in self._replies:
                self._repeat_reply(cmd.id)
                return
            self._replies[cmd.id] = None
            while len(self._replies) > REMEMBERED_IDS:
                self._replies.popitem(last=False)
        try:
            self._jobs.put_nowait(_Job(cmd.id, _to_message(cmd)))
        except queue.Full:
            self._reply(cmd.id, False, "bridge busy: too many commands queued")

    def _repeat_reply(self, cmd_id: str) -> None:
        """A redelivered command: answer again if done, never execute twice."""
        reply = self._replies[cmd_id]
        log.info("command %r received again; not resent to the controller", cmd_id)
        if reply is not None:
            self.bus.send(topics.TREADMILL_CMD_REPLY, reply)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._execute(job)
            except Exception:
                log.exception("command %r failed", job.id)

    def _execute(self, job: _Job) -> None:
        if job.id is None and isinstance(job.msg, m.StatusRequest):
            self._status_queued.clear()
        before = self._triggers
        result = self.link.command(job.msg)
        if result.ok and isinstance(job.msg, (m.Arm, m.Disarm)):
            self._ensure_trigger_state(before, armed=isinstance(job.msg, m.Arm))
        if job.id is not None:
            log.info("command %r (%s): %s", job.id, job.msg.NAME, "ok" if result.ok else result.error)
            self._reply(job.id, result.ok, result.error)

    def _ensure_trigger_state(self, before: int, armed: bool) -> None:
        """The controller sends TRIGGER_STATE before the ACK; if that frame was lost, ask
        for it, so the trigger state on MQTT is current when the command reply goes out."""
        t = self._trigger
        if self._triggers > before and t is not None and t.armed == armed:
            return
        log.warning("trigger state after %s was lost on the line; requesting status",
                    "ARM" if armed else "DISARM")
        self.link.command(m.StatusRequest())

    def _reply(self, cmd_id: str, ok: bool, error: str | None) -> None:
        reply = CommandReply(id=cmd_id, ok=ok, error=error, t=time.time())
        with self._lock:
            if cmd_id in self._replies:
                self._replies[cmd_id] = reply
        self.bus.send(topics.TREADMILL_CMD_REPLY, reply)

    # -- serial → MQTT (reader thread) -------------------------------------------------------
    def _on_message(self, msg: m.Message, recv_s: float) -> None:
        if isinstance(msg, m.BeltStateMsg):
            self._belt_state(msg, recv_s)
        elif isinstance(msg, m.TriggerStateMsg):
            self._trigger_state(msg, recv_s)
        elif isinstance(msg, m.Fault):
            self._event("fault", m.describe_fault(msg.code), msg.code)
        elif isinstance(msg, m.Hello):
            self.publish_link()

    def _belt_state(self, msg: m.BeltStateMsg, recv_s: float) -> None:
        state = BeltState(t=self.link.to_unix(msg.clock, (msg.clock, recv_s)), running=msg.running,
                          speed_m_s=msg.speed_mm_s / 1000, incline_pct=msg.incline_permille / 10,
                          estop=msg.estop)
        prev = self._belt
        if prev is None or prev.estop != state.estop:
            if state.estop or prev is not None:
                self._event("estop" if state.estop else "estop_released")
        if self._belt_refresh or prev is None or _belt_key(prev) != _belt_key(state):
            self._belt, self._belt_refresh = state, False
            self.bus.send(topics.TREADMILL_STATE, state)

    def _trigger_state(self, msg: m.TriggerStateMsg, recv_s: float) -> None:
        first = self.link.to_unix(msg.first_pulse_clock, (msg.clock, recv_s)) if msg.first_pulse_clock else None
        state = TriggerState(t=self.link.to_unix(msg.clock, (msg.clock, recv_s)), armed=msg.armed,
                             rate_hz=msg.rate_mhz / 1000, first_pulse_t=first,
                             pulses_sent=msg.pulses_sent)
        self._trigger = state
        self._triggers += 1
        self.bus.send(topics.TREADMILL_TRIGGER, state)

    def _request_status(self) -> None:
        """Queue the bridge's own STATUS_REQUEST unless one is already waiting."""
        if self._status_queued.is_set():
            return
        self._status_queued.set()
        try:
            self._jobs.put_nowait(_Job(None, m.StatusRequest()))
        except queue.Full:  # commands are queued; the periodic reports refresh the state
            self._status_queued.clear()

    def _on_link(self, up: bool) -> None:
        if up:
            self._belt_refresh = True
            self._request_status()
            if self._was_lost:
                self._event("link_restored", f"{self.link.port} reopened")
        else:
            self._was_lost = True
            why = f" ({self.link.last_error})" if self.link.last_error else ""
            self._event("link_lost", f"{self.link.port} failed{why}; reopening with backoff")
        self.publish_link()

    def _on_reset(self, detail: str) -> None:
        """The controller restarted: its belt and train state start afresh; report, refresh.
        A train that was running died with it, and the rebooted controller counts from zero:
        its end is reported here, with an upper bound of its pulses, before the new status."""
        self._belt_refresh = True
        self._event("controller_reset", detail)
        self._end_lost_train()
        self._request_status()
        self.publish_link()

    def _end_lost_train(self) -> None:
        old = self._trigger
        if old is None or not old.armed or old.first_pulse_t is None:
            return
        now = time.time()
        bound = max(old.pulses_sent, int((now - old.first_pulse_t) * old.rate_hz) + 1)
        self._trigger = TriggerState(t=now, armed=False, rate_hz=old.rate_hz, first_pulse_t=old.first_pulse_t,
                                     pulses_sent=bound, train_lost=True)
        log.warning("the trigger train died with the controller's reset: at most %d pulses", bound)
        self.bus.send(topics.TREADMILL_TRIGGER, self._trigger)

    def _on_silent(self, silent: bool) -> None:
        if silent:
            self._event("controller_silent", f"no heartbeat for {self.config.serial.silent_after_s} s")
        else:
            self._event("controller_back")
        self.publish_link()

    def _event(self, kind: str, detail: str = "", code: int | None = None) -> None:
        log.info("treadmill event %s %s", kind, detail)
        self.bus.send(topics.TREADMILL_EVENT, TreadmillEvent(t=time.time(), kind=kind, detail=detail,
                                                             code=code))

    # -- link health ------------------------------------------------------------------------------
    def link_state(self, connected: bool | None = None) -> LinkState:
        link, hello = self.link, self.link.hello
        drift = link.clocksync.drift_ppm
        return LinkState(
            t=time.time(), connected=link.connected if connected is None else connected,
            port=link.port, firmware=hello.firmware if hello else None,
            protocol=hello.protocol if hello else None, clock_hz=hello.clock_hz if hello else None,
            rejected_frames=link.rejected, lost_frames=link.lost, reconnects=link.reconnects,
            clock_drift_ppm=None if drift is None else round(drift, 2),
            controller_silent=link.silent)

    def publish_link(self, force: bool = False, connected: bool | None = None) -> None:
        """Publish LinkState when its meaning changed, or always with ``force`` (the timer).
        Read and sent under the lock: the serial reader (a hello) and the caller of start()
        publish at once, and a state read before the hello but sent after it would stay the
        retained one (CI: the firmware never appeared)."""
        with self._lock:
            state = self.link_state(connected)
            key = (state.connected, state.firmware, state.protocol, state.clock_hz, state.reconnects,
                   state.controller_silent)
            if not force and key == self._link_key:
                return
            self._link_key = key
            self.bus.send(topics.BRIDGE_LINK, state)


def _belt_key(s: BeltState) -> tuple:
    return (s.running, s.speed_m_s, s.incline_pct, s.estop)


def _to_message(cmd: TreadmillCommand) -> m.Message:
    if cmd.cmd == "arm":
        return m.Arm(round(cmd.rate_hz * 1000))
    return {"disarm": m.Disarm, "ping": m.Ping, "status": m.StatusRequest}[cmd.cmd]()
