"""Diagnostics over MQTT for one daemon: health every few seconds, events when a problem is
raised or cleared, and commands answered with the request's MQTT v5 correlation data.

The daemon provides what only it knows through ``DiagHooks`` (its figures, its problems,
its self-tests, the settings it can change live, a still frame); everything else — the
machine's figures, command parsing and dispatch, replies, events, restart — is here.

Threads: paho's network thread only queues a command (a handler that waits on the broker
there would deadlock it); one worker carries commands out, one timer evaluates problems
every second and publishes health every ``period_s``. A malformed, unknown or forbidden
command gets an error reply and is counted; nothing a requester sends can raise out of
this module.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel, ValidationError

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import DiagCommand, DiagEvent, DiagHealth, DiagReply, PayloadError, clip, decode
from rig.ops import health as h

log = logging.getLogger(__name__)
EXIT_RESTART = 75  # EX_TEMPFAIL: non-zero, so systemd's Restart=on-failure starts the daemon again
HEALTH_PERIOD_S = 5.0
TICK_S = 1.0
INBOX_MAX = 16
REPLY_WAIT_S = 2.0
RESTART_GRACE_S = 20.0  # a clean stop that takes longer than this is cut short
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TECH_ONLY = frozenset({"still"})
REDACTED = "<redacted>"


class DiagError(Exception):
    """A command that cannot be carried out; its message is the error reply. ``refused``
    ones (malformed, unknown, forbidden) are counted; a failed self-test is not."""

    def __init__(self, message: str, result: dict | None = None, refused: bool = True):
        super().__init__(message)
        self.result, self.refused = result or {}, refused


def ms_since(t0: float) -> float:
    """Milliseconds since ``t0`` (a ``time.perf_counter()`` reading), as a self-test reports them."""
    return round((time.perf_counter() - t0) * 1000, 1)


@dataclass(frozen=True)
class Check:
    """One self-test step: what was tried, whether it worked, how long it took."""
    name: str
    ok: bool
    detail: str
    ms: float | None = None


@dataclass
class DiagHooks:
    """What the daemon contributes. ``live`` maps a dotted config key that is safe to
    change while running to an optional callback run after the config object is updated."""
    figures: Callable[[], dict[str, Any]] = dict
    problems: Callable[[dict[str, Any]], dict[str, str]] = lambda figures: {}
    selftest: Callable[[], list[Check]] = list
    live: dict[str, Callable[[Any], None] | None] = field(default_factory=dict)
    still: Callable[[], tuple[bytes, int, int]] | None = None  # JPEG, width, height
    state_dir: Path | None = None


# -- settings (pure) -------------------------------------------------------------------------
def redact(data: Any) -> Any:
    """The config as JSON data with every password-ish value hidden."""
    if isinstance(data, dict):
        return {k: (REDACTED if _secret(k) and v is not None else redact(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data


def _secret(key: str) -> bool:
    return any(w in key.lower() for w in ("password", "secret", "token"))


def parse_value(raw: str) -> Any:
    """A command-line value: JSON when it parses (numbers, [lists], true), else the string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _lookup(data: dict, key: str) -> tuple[dict, str]:
    *parents, leaf = key.split(".")
    for p in parents:
        data = data.get(p) if isinstance(data, dict) else None
    if not isinstance(data, dict) or leaf not in data:
        raise DiagError(f"unknown setting {key!r}")
    return data, leaf


def validated_setting(config: BaseModel, key: str, raw: str) -> Any:
    """``key`` set to ``raw`` in a copy of the config, validated by the config's own model;
    returns the validated value. DiagError names the key and the model's complaint."""
    data = config.model_dump()
    parent, leaf = _lookup(data, key)
    parent[leaf] = parse_value(raw)
    try:
        new = type(config).model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise DiagError(f"{key}: {err['msg']}") from None
    obj = new
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def apply_setting(config: BaseModel, key: str, value: Any) -> None:
    """Set a validated value on the live config object, which the daemon reads from."""
    *parents, leaf = key.split(".")
    obj = config
    for p in parents:
        obj = getattr(obj, p)
    setattr(obj, leaf, value)


def jsonable(value: Any) -> Any:
    """Plain JSON types; NaN and Infinity (which payloads refuse) become null."""
    return json.loads(json.dumps(value, default=str), parse_constant=lambda _: None)


# -- the agent -------------------------------------------------------------------------------
class DiagAgent:
    def __init__(self, bus: BusClient, config: BaseModel, hooks: DiagHooks, period_s: float = HEALTH_PERIOD_S):
        self.bus, self.config, self.hooks, self.period_s = bus, config, hooks, period_s
        self.name, self.rig_id = bus.daemon, bus.rig_id
        self.started = time.monotonic()
        self.refused = 0
        self.restart_requested = False
        self.tracker = h.ProblemTracker()
        self._daemon_stop: threading.Event | None = None
        self._embedded = True
        self._closing = threading.Event()
        self._report_now = threading.Event()  # a session ended: the figures a technician looks at changed
        self._inbox: queue.Queue = queue.Queue(INBOX_MAX)
        self._threads: list[threading.Thread] = []
        self._hook_failed: set[str] = set()
        bus.subscribe(topics.DIAG_CMD.path(self.rig_id, daemon=self.name), lambda m: self._receive(m, False))
        bus.subscribe(topics.DIAG_CMD_TECH.path(self.rig_id, daemon=self.name), lambda m: self._receive(m, True))

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, daemon_stop: threading.Event | None = None) -> "DiagAgent":
        """``daemon_stop`` is the event that stops the daemon: ``restart`` sets it. A daemon
        run from the main thread (its CLI) then exits with EXIT_RESTART."""
        self._daemon_stop = daemon_stop
        self._embedded = threading.current_thread() is not threading.main_thread()
        self._threads = [threading.Thread(target=self._serve_loop, name="diag-commands", daemon=True),
                         threading.Thread(target=self._health_loop, name="diag-health", daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def close(self) -> None:
        self._closing.set()
        for t in self._threads:
            t.join(5)

    def exit_if_restart(self) -> None:
        """Called by the daemon after its clean stop: a requested restart ends the process
        with a failure status, so systemd brings it back (Restart=on-failure)."""
        if self.restart_requested and not self._embedded:
            log.warning("exiting with status %d for a restart", EXIT_RESTART)
            raise SystemExit(EXIT_RESTART)

    # -- health and events -------------------------------------------------------------------
    def _hook(self, name: str, fn: Callable, *args, default: Any = None) -> Any:
        """A daemon hook that fails is logged once and reported empty; health goes on."""
        try:
            return fn(*args)
        except Exception:
            if name not in self._hook_failed:
                self._hook_failed.add(name)
                log.exception("diagnostics hook %s failed (further failures not logged)", name)
            return default

    def health(self) -> DiagHealth:
        sysf = h.system_figures(self.hooks.state_dir, self.started)
        figures = self._hook("figures", self.hooks.figures, default={}) or {}
        problems = {**h.common_problems(sysf), **(self._hook("problems", self.hooks.problems, figures) or {})}
        return DiagHealth(daemon=self.name, t=time.time(), period_s=self.period_s, **sysf,
                          broker_reconnects=self.bus.reconnects, rejected_payloads=sum(self.bus.rejected.values()),
                          commands_refused=self.refused, figures=jsonable(figures), problems=problems)

    def publish_health(self, qos: int | None = None):
        return self.bus.publish(topics.DIAG_HEALTH.path(self.rig_id, daemon=self.name), self.health(),
                                qos=topics.DIAG_HEALTH.qos if qos is None else qos, retain=True)

    def event(self, kind: str, detail: str = "", active: bool = True, level: str | None = None) -> None:
        level = level or h.EVENT_LEVELS.get(kind, "warning")
        (log.warning if level != "info" and active else log.info)("diag event %s%s: %s", kind,
                                                                   "" if active else " cleared", detail)
        self.bus.send(topics.DIAG_EVENT, DiagEvent(daemon=self.name, t=time.time(), kind=kind, level=level,
                                                   active=active, detail=detail), daemon=self.name)

    def report_now(self) -> None:
        """Publish health at the next tick rather than at the period's end: the daemon's
        figures just took their final value for a session (``gaitrig diag status`` right
        after a walk shows the walk, not a report from its middle)."""
        self._report_now.set()

    def _health_loop(self) -> None:
        last = 0.0
        while not self._closing.is_set():
            due = self._report_now.is_set()
            self._report_now.clear()
            report = self.health()
            edges = self.tracker.update(report.problems)
            for kind, active, detail in edges:
                self.event(kind, detail, active, None if active else "info")
            if edges or due or time.monotonic() - last >= self.period_s:
                self.bus.publish(topics.DIAG_HEALTH.path(self.rig_id, daemon=self.name), report,
                                 qos=topics.DIAG_HEALTH.qos, retain=True)
                last = time.monotonic()
            self._closing.wait(TICK_S)

    # -- commands ----------------------------------------------------------------------------
    def _receive(self, msg, tech: bool) -> None:
        """paho's thread: queue only. A full queue is answered at once, never waited on."""
        try:
            self._inbox.put_nowait((msg, tech))
        except queue.Full:
            self.refused += 1
            self._reply(msg, DiagReply(daemon=self.name, cmd=None, ok=False, t=time.time(),
                                       error="busy: too many diagnostics commands queued"))

    def _serve_loop(self) -> None:
        while not self._closing.is_set():
            try:
                msg, tech = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            self.serve(msg, tech)

    def serve(self, msg, tech: bool) -> DiagReply:
        """Carry out one command message and reply; every failure becomes an error reply."""
        name = None
        try:
            cmd = self._parse(msg)
            name = cmd.cmd
            reply = DiagReply(daemon=self.name, cmd=name, ok=True, result=self._execute(cmd, tech), t=time.time())
        except DiagError as e:
            self.refused += e.refused
            reply = DiagReply(daemon=self.name, cmd=name, ok=False, error=clip(str(e), 1000), result=jsonable(e.result),
                              t=time.time())
        except Exception as e:  # a bug in a hook must not take the daemon down
            log.exception("diagnostics command %s failed", name)
            reply = DiagReply(daemon=self.name, cmd=name, ok=False, error=clip(f"internal error: {e!r}", 1000),
                              t=time.time())
        info = self._reply(msg, reply)
        if reply.ok and name == "restart":
            self._restart(info)
        return reply

    def _parse(self, msg) -> DiagCommand:
        try:
            return decode(DiagCommand, msg.payload)
        except PayloadError as e:
            self.bus.count_rejection(e, msg.topic)
            raise DiagError(f"malformed command: {e}") from None

    def _reply(self, msg, reply: DiagReply):
        props = getattr(msg, "properties", None)
        topic = getattr(props, "ResponseTopic", None) or topics.DIAG_REPLY.path(self.rig_id, daemon=self.name)
        out = Properties(PacketTypes.PUBLISH)
        correlation = getattr(props, "CorrelationData", None)
        if correlation is not None:
            out.CorrelationData = correlation
        try:
            return self.bus.publish(topic, reply, qos=topics.DIAG_REPLY.qos, properties=out)
        except (ValueError, TypeError) as e:  # e.g. a response topic with wildcards
            log.warning("cannot reply on %r: %s", topic, e)
            return None

    def _execute(self, cmd: DiagCommand, tech: bool) -> dict:
        table: dict[str, tuple[int, Callable[..., dict]]] = {
            "ping": (0, self._ping), "health": (0, lambda: self.health().model_dump()),
            "config": (0, lambda: redact(self.config.model_dump(mode="json"))), "set": (2, self._set),
            "selftest": (0, self._selftest), "restart": (0, self._restart_reply), "log_level": (1, self._log_level),
            "still": (0, self._still)}
        if cmd.cmd not in table:
            raise DiagError(f"unknown command {cmd.cmd!r}; known: {', '.join(sorted(table))}")
        if cmd.cmd in TECH_ONLY and not tech:
            raise DiagError(f"{cmd.cmd} is for technicians: publish it on "
                            f"{topics.DIAG_CMD_TECH.path(self.rig_id, daemon=self.name)}")
        nargs, handler = table[cmd.cmd]
        if len(cmd.args) != nargs:
            usage = {"set": "set KEY VALUE", "log_level": f"log_level {'|'.join(LOG_LEVELS)}"}.get(cmd.cmd, cmd.cmd)
            raise DiagError(f"{cmd.cmd} takes {nargs} argument(s), got {len(cmd.args)}: usage: {usage}")
        return handler(*cmd.args)

    def _ping(self) -> dict:
        return {"pong": True, "uptime_s": round(time.monotonic() - self.started, 1)}

    def _log_level(self, level: str) -> dict:
        level = level.upper()
        if level not in LOG_LEVELS:
            raise DiagError(f"log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
        logging.getLogger().setLevel(level)
        self.event("log_level", f"log level set to {level}", level="info")
        return {"log_level": level}

    def _set(self, key: str, raw: str) -> dict:
        live = sorted(self.hooks.live)
        if key not in self.hooks.live:
            _lookup(self.config.model_dump(), key)  # unknown keys say so
            raise DiagError(f"{key} is read at start-up only: change it in the config file, then restart "
                            f"(`gaitrig diag cmd {self.name} restart`); live settings: {', '.join(live) or 'none'}",
                            {"needs_restart": [key], "live": live})
        value = validated_setting(self.config, key, raw)
        apply_setting(self.config, key, value)
        if self.hooks.live[key]:
            self.hooks.live[key](value)
        self.event("setting_changed", f"{key} = {jsonable(value)!r} (until restart; the config file is unchanged)",
                   level="info")
        return {"key": key, "value": jsonable(value), "applied": True, "live": live}

    def _selftest(self) -> dict:
        checks = self._hook("selftest", self.hooks.selftest, default=None)
        if checks is None:
            checks = [Check("selftest", False, "the daemon's self-test raised; see its log")]
        checks = [*checks, self._broker_check()]
        result = {"passed": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
        if not result["passed"]:
            failed = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
            raise DiagError(f"{len(failed)} of {len(checks)} checks failed: " + "; ".join(failed), result,
                            refused=False)
        return result

    def _broker_check(self) -> Check:
        """A QoS 1 publish of our health and its PUBACK: the broker round trip."""
        t0 = time.perf_counter()
        try:
            info = self.publish_health(qos=1)
            info.wait_for_publish(REPLY_WAIT_S)
            ok = info.is_published()
        except (RuntimeError, ValueError) as e:
            return Check("broker", False, f"publish failed: {e}")
        ms = ms_since(t0)
        return Check("broker", ok, f"round trip {ms} ms" if ok else f"no PUBACK within {REPLY_WAIT_S} s", ms)

    def _still(self) -> dict:
        if self.hooks.still is None:
            raise DiagError(f"{self.name} has no camera")
        try:
            jpeg, width, height = self.hooks.still()
        except (RuntimeError, OSError) as e:
            raise DiagError(f"no still: {e}", refused=False) from None
        return {"jpeg_b64": base64.b64encode(jpeg).decode(), "width": width, "height": height, "bytes": len(jpeg)}

    def _restart_reply(self) -> dict:
        if self._daemon_stop is None:
            raise DiagError("this daemon runs embedded (no stop event): restart it by hand")
        return {"exit_status": EXIT_RESTART, "detail": "stopping cleanly; systemd (Restart=on-failure) starts it again"}

    def _restart(self, reply_info) -> None:
        """After the reply is out: stop the daemon cleanly; a stop that hangs is cut short."""
        if reply_info is not None:
            try:
                reply_info.wait_for_publish(REPLY_WAIT_S)
            except (RuntimeError, ValueError):
                pass
        self.event("restart", "restart requested by command", level="info")
        self.restart_requested = True
        self._daemon_stop.set()
        if not self._embedded:
            timer = threading.Timer(RESTART_GRACE_S, lambda: os._exit(EXIT_RESTART))
            timer.daemon = True
            timer.start()
