"""The systemd notify protocol, without libsystemd: one datagram of ``KEY=VALUE`` lines to
the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` names an abstract socket).
Outside systemd the variable is unset and every call is a no-op returning False, so the
daemons call these unconditionally.

The watchdog is only worth having if it is fed by proof of work: ``Watchdog`` pings every
half of ``$WATCHDOG_USEC`` *only while* a liveness check says the pipeline moves. A camera
that hangs stops the pings and systemd kills and restarts the node (``WatchdogSec=`` +
``Restart=on-failure``). Typical use in a daemon::

    liveness = Liveness(stall_after_s=5.0)       # frames must keep coming while recording
    with Watchdog(liveness):                      # no-op outside systemd
        notify.ready("waiting for a session")
        while not stop.is_set():
            liveness.set_idle(not recording)      # idle by design: nothing to prove
            ... process a frame ...; liveness.beat()
        notify.stopping()
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable, Mapping

log = logging.getLogger(__name__)
LivenessCheck = Callable[[], bool]


def _address(env: Mapping[str, str]) -> str | None:
    path = env.get("NOTIFY_SOCKET")
    if not path:
        return None
    if path.startswith("@"):
        return "\0" + path[1:]
    if path.startswith("/"):
        return path
    log.warning("NOTIFY_SOCKET=%r is not a unix socket path; notifications disabled", path)
    return None


def notify(*fields: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``fields`` (each ``KEY=VALUE``) as one datagram. False when not under systemd
    or when sending fails: a notification is never worth crashing a daemon for."""
    address = _address(os.environ if env is None else env)
    if address is None:
        return False
    message = "\n".join(fields).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message, address)
        return True
    except OSError as e:
        log.warning("sd_notify %s failed: %s", fields, e)
        return False


def _status_field(text: str) -> str:
    return "STATUS=" + " ".join(text.split())  # one line: a newline would start a new field


def ready(status_text: str | None = None) -> bool:
    """Start-up finished: ``Type=notify`` units count as started only now."""
    return notify("READY=1", *([_status_field(status_text)] if status_text else []))


def status(text: str) -> bool:
    """The one-line state shown by ``systemctl status``."""
    return notify(_status_field(text))


def watchdog() -> bool:
    return notify("WATCHDOG=1")


def stopping(status_text: str | None = None) -> bool:
    return notify("STOPPING=1", *([_status_field(status_text)] if status_text else []))


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """``$WATCHDOG_USEC`` in seconds, or None when this process is not the one watched
    (unset, or ``$WATCHDOG_PID`` names another process, e.g. a parent that exec'd us)."""
    env = os.environ if env is None else env
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value_us = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not an integer; watchdog disabled", usec)
        return None
    return value_us / 1e6 if value_us > 0 else None


class Liveness:
    """The usual liveness check: the pipeline beat within ``stall_after_s``, or it is idle
    by design (no session, nothing to process). Thread-safe enough: plain attribute writes."""

    def __init__(self, stall_after_s: float, clock: Callable[[], float] = time.monotonic):
        self.stall_after_s = stall_after_s
        self._clock = clock
        self._last_beat = clock()
        self._idle = False

    def beat(self) -> None:
        """Call after each unit of real work (a frame processed, a serial frame read)."""
        self._last_beat = self._clock()

    def set_idle(self, idle: bool) -> None:
        """Idle by design: no pings are withheld. Leaving idle restarts the stall clock."""
        if self._idle and not idle:
            self._last_beat = self._clock()
        self._idle = idle

    def seconds_since_beat(self) -> float:
        return self._clock() - self._last_beat

    def __call__(self) -> bool:
        return self._idle or self.seconds_since_beat() <= self.stall_after_s


class Watchdog:
    """Pings ``WATCHDOG=1`` every half interval while ``alive()`` is True, from its own
    thread. A check that raises counts as not alive. Disabled (no thread) when the unit
    has no ``WatchdogSec=``; pass ``interval_s`` to override the environment (tests)."""

    def __init__(self, alive: LivenessCheck, interval_s: float | None = None, *,
                 env: Mapping[str, str] | None = None):
        self.alive = alive
        self.interval_s = interval_s if interval_s is not None else watchdog_interval_s(env)
        self.pings = 0
        self.withheld = 0
        self._healthy = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.interval_s is not None

    @property
    def ping_every_s(self) -> float | None:
        return self.interval_s / 2 if self.interval_s else None

    def start(self) -> "Watchdog":
        if self.enabled and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def __enter__(self) -> "Watchdog":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        while True:
            self.tick()
            if self._stop.wait(self.ping_every_s):
                return

    def _check(self) -> bool:
        try:
            return bool(self.alive())
        except Exception:
            log.exception("watchdog liveness check failed")
            return False

    def tick(self) -> bool:
        """One round: ping if alive; report the change in STATUS when health flips."""
        alive = self._check()
        if alive:
            watchdog()
            self.pings += 1
        else:
            self.withheld += 1
        if alive != self._healthy:
            self._healthy = alive
            text = "pipeline moving again" if alive else "pipeline stalled: watchdog pings withheld"
            (log.info if alive else log.error)(text)
            status(text)
        return alive
