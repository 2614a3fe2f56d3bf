"""The host side of the serial line, on pyserial: one reader thread that feeds the frame
decoder, commands with ACK/ERROR, timeout and bounded retransmission, reopening the same
path with exponential backoff when the device vanishes, controller-silence detection and
clock synchronisation from heartbeats.

pyserial has no reconnect of its own; a USB controller that is unplugged or resets makes
reads fail (EIO) and its tty disappears, so we close, wait and reopen by the same path —
ideally a ``/dev/serial/by-id/...`` symlink, which survives re-enumeration.
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import serial

from firmware_bridge.protocol import messages as m
from firmware_bridge.protocol.clocksync import ClockSync
from firmware_bridge.protocol.framing import DELIMITER, FrameDecoder, encode_frame
from rig.config import SerialSettings

log = logging.getLogger(__name__)
BY_ID = Path("/dev/serial/by-id")
READ_TIMEOUT_S = 0.05
PATH_CHECK_S = 0.5
DEFAULT_CLOCK_HZ = 1_000_000
RESYNC_MIN_S = 0.25  # a sequence gap asks for the full status at most this often (4 frames, ~1 % of the line)
MAX_AHEAD_S = 10.0  # a clock this far ahead of the fitted heartbeat clock is implausible
RESET_BEHIND_S = 0.5  # a clock this far behind the latest one: the controller restarted
MISBEHAVING_RUN = 20  # this many impossible messages in a row, nothing sane between: reopen


class LinkLost(Exception):
    """The open device stopped working (EIO, unplugged, path re-pointed)."""


class ControllerMisbehaving(Exception):
    """The controller sends only impossible values: reopening the line is our one remedy
    (a USB CDC device that lost its state, a host that joined mid-garbage)."""


@dataclass(frozen=True)
class CommandResult:
    ok: bool
    error: str | None = None
    code: int | None = None  # ErrorCode when the controller refused
    tries: int = 0


class _Pending:
    """The one command in flight, completed by the reader thread."""

    def __init__(self, seq: int, msg_type: int):
        self.seq, self.type = seq, msg_type
        self.done = threading.Event()
        self.result: CommandResult | None = None

    def finish(self, result: CommandResult) -> None:
        if not self.done.is_set():
            self.result = result
            self.done.set()


def preferred_path(port: str) -> str:
    """The /dev/serial/by-id symlink for ``port`` if there is one: it names the device, not
    the order it was plugged in, so a reopen after a replug finds the same controller."""
    if port.startswith(str(BY_ID)) or not BY_ID.is_dir():
        return port
    target = os.path.realpath(port)
    for link in sorted(BY_ID.iterdir()):
        if os.path.realpath(link) == target:
            log.info("using %s for %s", link, port)
            return str(link)
    return port


def _device_id(path: str) -> int | None:
    try:
        return os.stat(path).st_rdev
    except OSError:
        return None


def _noop(*args) -> None:
    pass


class SerialLink:
    """A self-healing connection to the treadmill controller.

    Callbacks run on the reader thread and must not block on ``command``:
    ``on_message(msg, host_monotonic_s)`` (only messages that passed ``m.validate``),
    ``on_link(up)``, ``on_silent(silent)``, ``on_reset(detail)`` (the controller restarted)
    and ``on_gap()`` (frames were lost: ask for the status; at most once per RESYNC_MIN_S).
    ``command(msg)`` blocks the calling thread until ACK/ERROR/timeout.
    """

    def __init__(self, settings: SerialSettings, *,
                 on_message: Callable[[m.Message, float], None] = _noop,
                 on_link: Callable[[bool], None] = _noop,
                 on_silent: Callable[[bool], None] = _noop,
                 on_reset: Callable[[str], None] = _noop,
                 on_gap: Callable[[], None] = _noop):
        self.settings = settings
        self.port = preferred_path(settings.port)
        self.on_message, self.on_link, self.on_silent = on_message, on_link, on_silent
        self.on_reset, self.on_gap = on_reset, on_gap
        self.decoder = FrameDecoder(m.CONTROLLER_BODY_SIZES, restart_types=frozenset({m.Hello.TYPE}))
        self.clocksync = ClockSync(DEFAULT_CLOCK_HZ)
        self.hello: m.Hello | None = None
        self.invalid: Counter[str] = Counter()  # rejected messages by "NAME.field"
        self.errors = 0  # unexpected failures while handling the line (each reopened it)
        self.last_error: str | None = None
        self.resets = 0  # controller restarts seen
        self.reconnects = 0
        self.retransmits = 0
        self.silent = False
        self._last_clock: int | None = None  # latest controller clock seen, across reconnects
        self._invalid_run = 0  # impossible messages since the last sane one
        self._next_resync = 0.0
        self._resync_due = False  # a gap seen inside the rate limit: resync when it ends
        self._ever_connected = False
        self._serial: serial.Serial | None = None
        self._stop = threading.Event()
        self._up = threading.Event()
        self._write_lock = threading.Lock()
        self._cmd_lock = threading.Lock()
        self._pending: _Pending | None = None
        self._seq = random.randrange(256)  # a restarted host is not a retransmission
        self._last_heartbeat = 0.0
        self._thread = threading.Thread(target=self._run, name="serial-link", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "SerialLink":
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        """The reading thread runs (the device may still be away: that is reported, not fatal)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._up.wait(timeout_s)

    @property
    def rejected(self) -> int:
        """Frames the decoder refused plus well-formed messages with impossible values."""
        return self.decoder.rejected_total + sum(self.invalid.values())

    @property
    def lost(self) -> int:
        return self.decoder.lost

    # -- commands -------------------------------------------------------------------------
    def command(self, msg: m.Message) -> CommandResult:
        """Send one command and wait for its ACK/ERROR, retransmitting the same frame (same
        seq: the controller de-duplicates) up to ``command_retries`` times."""
        with self._cmd_lock:
            if not self.connected:
                return CommandResult(False, "serial link down")
            type_id, body = m.encode(msg)
            self._seq = (self._seq + 1) & 0xFF
            pending = self._pending = _Pending(self._seq, type_id)
            frame = DELIMITER + encode_frame(self._seq, type_id, body)
            try:
                return self._exchange(pending, frame)
            finally:
                self._pending = None

    def _exchange(self, pending: _Pending, frame: bytes) -> CommandResult:
        tries = self.settings.command_retries + 1
        for attempt in range(1, tries + 1):
            if attempt > 1:
                self.retransmits += 1
            if not self._write(frame):
                return CommandResult(False, "serial link lost", tries=attempt)
            if pending.done.wait(self.settings.command_timeout_s):
                r = pending.result
                return CommandResult(r.ok, r.error, r.code, attempt)
        return CommandResult(False, f"timeout: no reply from the controller after {tries} tries",
                             tries=tries)

    def _write(self, data: bytes) -> bool:
        with self._write_lock:
            ser = self._serial
            if ser is None:
                return False
            try:
                ser.write(data)
                return True
            except (serial.SerialException, OSError) as e:
                log.warning("serial write failed: %s", e)
                return False

    # -- reader thread --------------------------------------------------------------------
    def _run(self) -> None:
        """Open, serve, and after any end reopen with exponential backoff, for as long as
        the link runs; the backoff starts afresh only after a connection that lasted."""
        delay = self.settings.reconnect_min_s
        while not self._stop.is_set():
            ser = self._open()
            if ser is not None:
                opened = time.monotonic()
                healthy = self._serve(ser)
                if healthy and time.monotonic() - opened > self.settings.reconnect_max_s:
                    delay = self.settings.reconnect_min_s
                if not healthy:
                    log.error("reopening %s in %.1f s", self.port, delay)
            self._stop.wait(delay)
            delay = min(delay * 2, self.settings.reconnect_max_s)

    def _open(self) -> serial.Serial | None:
        try:
            ser = serial.Serial(self.port, self.settings.baudrate, timeout=READ_TIMEOUT_S,
                                write_timeout=1.0, exclusive=True)
        except Exception as e:  # SerialException, OSError, ValueError: all mean "not now"
            log.debug("cannot open %s: %s", self.port, e)
            return None
        log.info("serial %s open", self.port)
        return ser

    def _serve(self, ser: serial.Serial) -> bool:
        """Read until the device fails or we stop; then close and report the link down.
        False after an unexpected failure in our own handling (logged, counted): the line
        is closed and reopened like a lost device, never left with a dead reader."""
        self._connected(ser)
        try:
            self._read_loop(ser)
            return True
        except (LinkLost, serial.SerialException, OSError) as e:
            if not self._stop.is_set():
                self.last_error = str(e)
                log.warning("serial link to %s lost: %s", self.port, e)
            return True
        except ControllerMisbehaving as e:
            self.errors += 1
            self.last_error = str(e)
            log.error("%s; closing %s", e, self.port)
            return False
        except Exception as e:
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"
            log.error("handling the controller's data failed (%s, failure %d); closing %s",
                      self.last_error, self.errors, self.port, exc_info=self.errors == 1)
            return False
        finally:
            self._disconnected(ser)

    def _connected(self, ser: serial.Serial) -> None:
        self.decoder.reset()
        self._invalid_run = 0
        self._serial = ser
        self._last_heartbeat = time.monotonic()
        self.silent = False
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        self._up.set()
        self._call(self.on_link, True)

    def _disconnected(self, ser: serial.Serial) -> None:
        self._up.clear()
        with self._write_lock:
            self._serial = None
        try:
            ser.close()
        except Exception:  # closing a dead device may fail; it is gone either way
            pass
        if self._pending:
            self._pending.finish(CommandResult(False, "serial link lost"))
        if not self._stop.is_set():  # our own shutdown is not a lost link
            self._call(self.on_link, False)

    def _read_loop(self, ser: serial.Serial) -> None:
        device = _device_id(self.port)
        next_check = time.monotonic() + PATH_CHECK_S
        while not self._stop.is_set():
            data = ser.read(max(1, ser.in_waiting))
            now = time.monotonic()
            if data:
                self._feed(data, now)
            self._maybe_resync(now)
            self._check_silence(now)
            if now >= next_check:
                next_check = now + PATH_CHECK_S
                if _device_id(self.port) != device:
                    raise LinkLost(f"{self.port} is gone or points to another device")

    def _feed(self, data: bytes, now: float) -> None:
        lost = self.decoder.lost
        for frame in self.decoder.feed(data):
            msg = self._checked(m.decode(frame.type, frame.body), now)  # sizes checked by the decoder
            if msg is not None:
                self._handle(msg, now)
        if self.decoder.lost > lost:
            self._resync_due = True

    def _maybe_resync(self, now: float) -> None:
        """Ask for the full status after a gap; a gap inside the rate limit is deferred to its
        end, never dropped (the lost frame may have been the emergency stop)."""
        if self._resync_due and now >= self._next_resync:
            self._resync_due = False
            self._next_resync = now + RESYNC_MIN_S
            self._call(self.on_gap)

    def _checked(self, msg: m.Message, now: float) -> m.Message | None:
        """The message if its values are possible, else None (counted, logged once per field)."""
        try:
            m.validate(msg, self.hello.clock_hz if self.hello else None)
            self._check_clock(msg, now)
        except m.InvalidMessage as e:
            self.invalid[e.key] += 1
            first = self.invalid[e.key] == 1
            log.log(logging.ERROR if first else logging.DEBUG,
                    "controller sent an impossible value, message rejected: %s%s", e,
                    " (further ones are counted in rejected_frames, not logged)" if first else "")
            self._invalid_run += 1
            if self._invalid_run >= MISBEHAVING_RUN:
                raise ControllerMisbehaving(f"controller misbehaves: {self._invalid_run} impossible "
                                            f"messages in a row, the last {e}") from None
            return None
        self._invalid_run = 0
        return msg

    def _check_clock(self, msg: m.Message, now: float) -> None:
        """A clock far behind the latest one means the controller restarted; a state clock far
        ahead of the fitted heartbeat clock is impossible (rejected); a heartbeat that far
        ahead means the controller restarted while the line was down (its clock is the truth)."""
        clock = getattr(msg, "clock", None)
        if clock is None:
            return
        hz, last = self.clocksync.clock_hz, self._last_clock
        restarted = last is not None and clock < last - RESET_BEHIND_S * hz
        if restarted:
            self._controller_reset(f"controller clock went back from {last} to {clock} ticks "
                                   f"({msg.NAME}): the controller restarted")
        elif self.clocksync.ready and clock > self.clocksync.to_clock(now) + MAX_AHEAD_S * hz:
            ahead_s = (clock - self.clocksync.to_clock(now)) / hz
            if not isinstance(msg, m.Heartbeat):
                raise m.InvalidMessage(f"{msg.NAME}.clock", f"{clock} is {ahead_s:.0f} s ahead of "
                                       "the heartbeat clock")
            restarted = True
            self._controller_reset(f"controller clock jumped {ahead_s:.0f} s ahead (HEARTBEAT): "
                                   "the controller restarted")
        self._last_clock = clock if restarted or last is None else max(last, clock)

    def _controller_reset(self, detail: str) -> None:
        self.resets += 1
        self.clocksync.reset()
        log.warning("%s (reset %d)", detail, self.resets)
        self._call(self.on_reset, detail)

    def _handle(self, msg: m.Message, now: float) -> None:
        if isinstance(msg, m.Heartbeat):
            self._heartbeat(msg, now)
        elif isinstance(msg, m.Hello):
            self._hello(msg)
        elif isinstance(msg, (m.Ack, m.Error)):
            self._reply(msg)
        self._call(self.on_message, msg, now)

    def _heartbeat(self, msg: m.Heartbeat, now: float) -> None:
        self._last_heartbeat = now
        self.clocksync.add(msg.clock, now)
        if self.silent:
            self.silent = False
            log.info("controller back")
            self._call(self.on_silent, False)

    def _hello(self, msg: m.Hello) -> None:
        if msg != self.hello:
            log.info("controller firmware %s, protocol %d, clock %d Hz",
                     msg.firmware, msg.protocol, msg.clock_hz)
        if msg.protocol != m.PROTOCOL_VERSION:
            log.error("controller speaks protocol %d, we speak %d", msg.protocol, m.PROTOCOL_VERSION)
        if msg.clock_hz != self.clocksync.clock_hz:
            self.clocksync = ClockSync(msg.clock_hz)
        self.hello = msg

    def _reply(self, msg: m.Ack | m.Error) -> None:
        pending = self._pending
        if pending is None or (msg.acked_seq, msg.command) != (pending.seq, pending.type):
            log.debug("reply for seq %d (%s) matches no command in flight",
                      msg.acked_seq, m.name_of(msg.command))
            return
        if isinstance(msg, m.Ack):
            pending.finish(CommandResult(True))
        else:
            pending.finish(CommandResult(False, m.describe_error(msg.code), msg.code))

    def _check_silence(self, now: float) -> None:
        if not self.silent and now - self._last_heartbeat > self.settings.silent_after_s:
            self.silent = True
            log.warning("controller silent: no heartbeat for %.1f s", now - self._last_heartbeat)
            self._call(self.on_silent, True)

    @staticmethod
    def _call(fn: Callable, *args) -> None:
        try:
            fn(*args)
        except Exception:  # a listener bug must not take the serial link down
            log.exception("serial link callback failed")

    # -- clock ------------------------------------------------------------------------------
    def to_unix(self, clock: int, fallback: tuple[int, float] | None = None) -> float | None:
        """Controller clock → host Unix time via clocksync; before the first heartbeat, via
        ``fallback`` = (clock, host monotonic receive time) of the message at hand."""
        offset = time.time() - time.monotonic()
        if self.clocksync.ready:
            return self.clocksync.to_host_s(clock) + offset
        if fallback is None:
            return None
        ref_clock, ref_host = fallback
        return ref_host + (clock - ref_clock) / self.clocksync.clock_hz + offset
