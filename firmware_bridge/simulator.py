"""A software treadmill controller on a pty, speaking the serial protocol as the firmware
does: heartbeats, belt and trigger states, ACK/ERROR with de-duplication by seq, a trigger
train counted exactly, a drifting clock — and fault injection (line noise, bit flips,
truncated frames, a hung controller, the device vanishing, a reboot, impossible values) to
prove the host survives.

The host opens ``sim.path``: a stable symlink to the pty's slave side, re-pointed at a new
pty after ``vanish`` — as /dev/serial/by-id/... is for a real USB controller.
"""
from __future__ import annotations

import errno
import logging
import os
import random
import select
import tempfile
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path

from firmware_bridge.protocol import messages as m
from firmware_bridge.protocol.framing import DELIMITER, FrameDecoder, encode_frame
from rig.sim.trigger_line import TriggerLine

log = logging.getLogger(__name__)
TICK_S = 0.005
DEDUP_WINDOW_S = 2.0
MAX_RATE_MHZ = 1_000_000
SPEED_REPORT_MIN_S = 0.1
WRITE_WAIT_S = 0.05
NOISE_CHUNK = 4096


@dataclass(frozen=True)
class Script:
    """Belt starts at ``start`` s, ramps to ``speed`` m/s over ``ramp`` s, walks ``walk`` s
    at speed, then stops; ``walks`` times (0: forever) with ``rest`` s between.
    Parsed from 'start=1,speed=1.2,ramp=1,walk=20'."""
    start: float = 1.0
    speed: float = 1.2
    ramp: float = 1.0
    walk: float = 20.0
    rest: float = 5.0
    walks: float = 1

    @classmethod
    def parse(cls, text: str) -> "Script":
        values = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = item.partition("=")
            if not sep or key not in cls.__dataclass_fields__:
                raise ValueError(f"script item {item!r}: expected one of "
                                 f"{', '.join(cls.__dataclass_fields__)} as key=value")
            values[key] = float(value)
        script = cls(**values)
        if min(script.start, script.speed, script.ramp, script.walk) < 0:
            raise ValueError("script values must not be negative")
        return script


class _Pty:
    """One pty pair: the master is ours, the slave is the device the host opens."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo or line editing before the host sets its own mode
        os.set_blocking(self.master, False)
        self.slave_path = os.ttyname(self.slave)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


class TreadmillSimulator:
    """The controller, in-process. ``start()`` opens the pty and runs it on a thread."""

    def __init__(self, link: str | Path | None = None, *, clock_hz: int = 1_000_000,
                 drift_ppm: float | None = None, seed: int | None = None,
                 heartbeat_s: float = 0.25, report_s: float = 1.0, arm_lead_s: float = 0.01,
                 noise_rate: float = 0.0, bitflip_rate: float = 0.0, truncate_rate: float = 0.0,
                 firmware: tuple[int, int, int] = (1, 0, 0), trigger_line: str | Path | None = None):
        self._rng = random.Random(seed)
        self.trigger_line = TriggerLine(trigger_line, create=True) if trigger_line else None
        self._tmpdir = None if link else tempfile.TemporaryDirectory(prefix="gaitrig-sim-")
        self.path = str(link or Path(self._tmpdir.name) / "treadmill")
        self.clock_hz = clock_hz
        self.drift_ppm = self._rng.uniform(-40, 40) if drift_ppm is None else drift_ppm
        self.heartbeat_s, self.report_s, self.arm_lead_s = heartbeat_s, report_s, arm_lead_s
        self.noise_rate, self.bitflip_rate, self.truncate_rate = noise_rate, bitflip_rate, truncate_rate
        self.firmware = firmware
        self._t0 = time.monotonic()
        self._clock0 = self._rng.randrange(1 << 32, 1 << 40)
        self._lock = threading.RLock()
        self._wlock = threading.Lock()  # one writer at a time: frames never interleave
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pty: _Pty | None = None
        self._decoder = FrameDecoder(track_sequence=False)
        self._seq = 0
        self._init_state()
        self._init_faults()

    def _init_state(self) -> None:
        self.running = False
        self.estopped = False
        self.incline_permille = 0
        self._ramp = (0.0, 0.0, self._t0, 0.0)  # from m/s, to m/s, start, duration
        self.armed = False
        self.rate_mhz = 0
        self.first_pulse_clock = 0
        self._final_pulses = 0
        self._last_cmd: tuple | None = None  # (seq, type, body, t, reply message)
        self._sent_belt: tuple | None = None
        self._next = {"heartbeat": 0.0, "belt": 0.0, "trigger": 0.0, "speed": 0.0}
        self.frames_sent = 0
        self.commands = 0

    def _init_faults(self) -> None:
        self._noise = bytearray()
        self._noise_credit = 0.0
        self._corrupt: list[tuple[str, tuple[type, ...] | None]] = []  # (how, only these messages)
        self._paused_until = 0.0
        self._was_paused = False
        self._vanished_until: float | None = None
        self.bytes_dropped = 0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "TreadmillSimulator":
        self._open_pty()
        self._send(self._hello())  # boot banner; nobody may be listening yet
        self._thread = threading.Thread(target=self._run, name="sim-treadmill", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self._close_pty(unlink=True)
        if self._tmpdir:
            self._tmpdir.cleanup()

    def __enter__(self) -> "TreadmillSimulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _open_pty(self) -> None:
        self._pty = _Pty()
        tmp = f"{self.path}.{os.getpid()}.tmp"
        os.symlink(self._pty.slave_path, tmp)
        os.replace(tmp, self.path)  # atomic re-point: the host never sees a half state
        log.info("simulated treadmill on %s -> %s", self.path, self._pty.slave_path)

    def _close_pty(self, unlink: bool) -> None:
        with self._wlock:
            if self._pty:
                self._pty.close()
                self._pty = None
        if unlink:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    # -- the controller clock -------------------------------------------------------------
    @property
    def _ticks_per_s(self) -> float:
        return self.clock_hz * (1 + self.drift_ppm * 1e-6)

    def clock(self, at: float | None = None) -> int:
        """The controller clock at host monotonic time ``at`` (default now)."""
        t = time.monotonic() if at is None else at
        return max(0, self._clock0 + int((t - self._t0) * self._ticks_per_s))  # 0 at a reset

    def clock_to_monotonic(self, clock: int) -> float:
        """Host monotonic time at which the controller clock reads ``clock`` (ground truth)."""
        return self._t0 + (clock - self._clock0) / self._ticks_per_s

    # -- the trigger train ------------------------------------------------------------------
    def _pulses_at(self, clock: int) -> int:
        if not self.first_pulse_clock or clock < self.first_pulse_clock:
            return 0
        return (clock - self.first_pulse_clock) * self.rate_mhz // (self.clock_hz * 1000) + 1

    @property
    def pulses_sent(self) -> int:
        """Pulses emitted so far (while armed) or in the last train (final once disarmed)."""
        with self._lock:
            return self._pulses_at(self.clock()) if self.armed else self._final_pulses

    def pulse_clock(self, k: int) -> int:
        """Controller clock of pulse k of the current/last train."""
        return self.first_pulse_clock + k * self.clock_hz * 1000 // self.rate_mhz

    def pulse_monotonic(self, k: int) -> float:
        """Host monotonic time of pulse k (ground truth, e.g. for simulated cameras)."""
        return self.clock_to_monotonic(self.pulse_clock(k))

    # -- the belt (driven by a person, or a script) ---------------------------------------
    def speed_m_s(self, at: float | None = None) -> float:
        t = time.monotonic() if at is None else at
        v0, v1, t0, dur = self._ramp
        if dur <= 0 or t >= t0 + dur:
            return v1
        return v0 + (v1 - v0) * max(0.0, t - t0) / dur

    def belt_start(self, speed_m_s: float, ramp_s: float = 0.0) -> None:
        with self._lock:
            if self.estopped:
                log.warning("belt start ignored: emergency stop engaged")
                return
            self.running = True
            self._ramp = (self.speed_m_s(), float(speed_m_s), time.monotonic(), float(ramp_s))

    def belt_stop(self) -> None:
        with self._lock:
            self.running = False
            self._ramp = (0.0, 0.0, time.monotonic(), 0.0)

    def estop(self) -> None:
        """Emergency stop: the belt halts at once; the trigger train is left to the host."""
        with self._lock:
            self.estopped = True
            self.belt_stop()

    def estop_release(self) -> None:
        with self._lock:
            self.estopped = False

    def set_incline(self, pct: float) -> None:
        with self._lock:
            self.incline_permille = round(pct * 10)

    def fault(self, code: int | m.FaultCode) -> None:
        self._send(m.Fault(self.clock(), int(code)))

    def play(self, script: Script | str) -> threading.Thread:
        """Run a belt script on a thread (returned, so a caller may join it)."""
        script = Script.parse(script) if isinstance(script, str) else script
        thread = threading.Thread(target=self._play, args=(script,), name="sim-script", daemon=True)
        thread.start()
        return thread

    def _play(self, s: Script) -> None:
        if self._stop.wait(s.start):
            return
        n = 0
        while not s.walks or n < s.walks:
            if n and self._stop.wait(s.rest):
                return
            self.belt_start(s.speed, s.ramp)
            if self._stop.wait(s.ramp + s.walk):
                return
            self.belt_stop()
            n += 1

    # -- fault injection ------------------------------------------------------------------
    def inject_noise(self, n_bytes: int) -> None:
        """Random bytes on the line between frames (they never cut a frame)."""
        with self._lock:
            self._noise += self._rng.randbytes(n_bytes)

    def corrupt_next(self, n: int = 1, how: str = "bitflip", only: tuple[type, ...] | None = None) -> None:
        """Corrupt the next ``n`` frames sent (of the ``only`` message types, if given)."""
        if how not in ("bitflip", "truncate"):
            raise ValueError(f"how must be 'bitflip' or 'truncate', not {how!r}")
        with self._lock:
            self._corrupt += [(how, only)] * n

    def pause(self, seconds: float) -> None:
        """The controller hangs: it neither sends nor reads (its trigger hardware runs on)."""
        self._paused_until = time.monotonic() + seconds

    def reset(self) -> None:
        """The controller reboots (watchdog, brown-out): belt and train state are lost, the
        clock restarts near zero, frames are numbered from seq 0 again, the boot HELLO is sent."""
        with self._lock:
            if self.armed and self.trigger_line:
                self.trigger_line.pulses(self._pulses_at(self.clock()), armed=False)
            self._t0 = time.monotonic()
            self._clock0 = self._rng.randrange(1000)
            self._seq = 0
            self._init_state()
            self._decoder.reset()
        log.info("simulated treadmill resets")
        self._send(self._hello())

    def inject(self, msg: m.Message) -> None:
        """Send any message, however impossible its values (a HELLO at 0 Hz, 65.5 m/s)."""
        self._send(msg)

    def inject_bytes(self, data: bytes) -> None:
        """Write raw bytes to the line as they are (forged or malformed frames)."""
        self._write(data)

    def vanish(self, seconds: float) -> None:
        """The device disappears (USB unplug): the pty closes and the path is gone for
        ``seconds``; then a new pty appears behind the same path. State is kept."""
        with self._lock:
            self._vanished_until = time.monotonic() + seconds

    # -- the loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick(time.monotonic())
            except Exception:
                log.exception("simulator tick failed")
                time.sleep(TICK_S)

    def _tick(self, now: float) -> None:
        if self._vanish_step(now) or now < self._paused_until:
            self._was_paused = now < self._paused_until
            time.sleep(TICK_S)
            return
        if self._was_paused:  # like a watchdog reset: what arrived while hung is dropped
            self._was_paused = False
            self._drain_input()
        self._read_commands()
        self._periodic(time.monotonic())
        self._flush_noise()

    def _vanish_step(self, now: float) -> bool:
        """True while vanished. Closes the pty when a vanish starts, reopens when it ends."""
        until = self._vanished_until
        if until is None:
            return False
        if self._pty is not None:
            log.info("simulated treadmill vanishes for %.1f s", until - now)
            self._close_pty(unlink=True)
        if now < until:
            return True
        self._vanished_until = None
        self._open_pty()
        self._send(self._hello())
        return False

    def _drain_input(self) -> None:
        try:
            while os.read(self._pty.master, 4096):
                pass
        except OSError:
            pass
        self._decoder.reset()

    def _read_commands(self) -> None:
        ready, _, _ = select.select([self._pty.master], [], [], TICK_S)
        if not ready:
            return
        try:
            data = os.read(self._pty.master, 4096)
        except OSError as e:  # EIO: nobody has the slave open (cannot happen: we hold it)
            if e.errno not in (errno.EAGAIN, errno.EIO):
                raise
            return
        for frame in self._decoder.feed(data):
            self._on_command(frame.seq, frame.type, frame.body)

    def _periodic(self, now: float) -> None:
        nxt = self._next
        if now >= nxt["heartbeat"]:
            nxt["heartbeat"] = now + self.heartbeat_s
            self._send(m.Heartbeat(self.clock(now)))
        self._report_belt(now)
        if self.armed and now >= nxt["trigger"]:
            self._send_trigger(now)
        if self.armed and self.trigger_line:
            with self._lock:
                self.trigger_line.pulses(self._pulses_at(self.clock(now)))

    def _report_belt(self, now: float) -> None:
        msg = self._belt_state(now)
        key = (msg.running, msg.estop, msg.incline_permille)
        speed_changed = self._sent_belt is not None and self._sent_belt[1] != msg.speed_mm_s
        due = (self._sent_belt is None or self._sent_belt[0] != key or now >= self._next["belt"]
               or (speed_changed and now >= self._next["speed"]))
        if due:
            self._sent_belt = (key, msg.speed_mm_s)
            self._next["belt"] = now + self.report_s
            self._next["speed"] = now + SPEED_REPORT_MIN_S
            self._send(msg)

    def _send_trigger(self, now: float) -> None:
        self._next["trigger"] = now + self.report_s
        self._send(self._trigger_state(now))

    # -- messages -----------------------------------------------------------------------------
    def _hello(self) -> m.Hello:
        return m.Hello(*self.firmware, m.PROTOCOL_VERSION, self.clock_hz)

    def _belt_state(self, now: float) -> m.BeltStateMsg:
        with self._lock:
            speed = round(self.speed_m_s(now) * 1000) if self.running else 0
            return m.BeltStateMsg(self.clock(now), self.running, speed, self.incline_permille,
                                  self.estopped)

    def _trigger_state(self, now: float) -> m.TriggerStateMsg:
        with self._lock:
            clock = self.clock(now)
            pulses = self._pulses_at(clock) if self.armed else self._final_pulses
            return m.TriggerStateMsg(clock, self.armed, self.rate_mhz, self.first_pulse_clock, pulses)

    # -- commands -----------------------------------------------------------------------------
    def _on_command(self, seq: int, msg_type: int, body: bytes) -> None:
        now = time.monotonic()
        last = self._last_cmd
        if last and last[:3] == (seq, msg_type, body) and now - last[3] < DEDUP_WINDOW_S:
            self._send(last[4])  # a retransmission: answer again, do not execute again
            return
        self.commands += 1
        code = self._execute(msg_type, body, now)
        reply = m.Ack(seq, msg_type) if code is None else m.Error(seq, msg_type, int(code))
        self._last_cmd = (seq, msg_type, body, now, reply)
        self._send(reply)

    def _execute(self, msg_type: int, body: bytes, now: float) -> m.ErrorCode | None:
        cls = m.HOST_MESSAGES.get(msg_type)
        if cls is None:
            return m.ErrorCode.UNKNOWN_COMMAND
        if len(body) != cls.STRUCT.size:
            return m.ErrorCode.BAD_LENGTH
        msg = m.decode(msg_type, body)
        if isinstance(msg, m.Arm):
            return self._arm(msg.rate_mhz, now)
        if isinstance(msg, m.Disarm):
            self._disarm(now)
        elif isinstance(msg, m.StatusRequest):
            self._send(self._hello())
            self._send(self._belt_state(now))
            self._send(self._trigger_state(now))
        return None

    def _arm(self, rate_mhz: int, now: float) -> m.ErrorCode | None:
        with self._lock:
            if not 0 < rate_mhz <= MAX_RATE_MHZ:
                return m.ErrorCode.BAD_ARGUMENT
            if self.armed:
                return m.ErrorCode.ALREADY_ARMED
            if self.estopped:
                return m.ErrorCode.ESTOP_ACTIVE
            self.armed, self.rate_mhz = True, rate_mhz
            self.first_pulse_clock = self.clock(now) + round(self.arm_lead_s * self.clock_hz)
            self._final_pulses = 0
        log.info("armed at %.3f Hz", rate_mhz / 1000)
        if self.trigger_line:  # the wire to the cameras: pulse 0 in host Unix time
            unix_offset = time.time() - time.monotonic()
            self.trigger_line.arm(self.pulse_monotonic(0) + unix_offset, rate_mhz / 1000)
        self._send_trigger(now)
        return None

    def _disarm(self, now: float) -> None:
        with self._lock:
            if self.armed:
                self._final_pulses = self._pulses_at(self.clock(now))
                self.armed = False
                if self.trigger_line:
                    self.trigger_line.pulses(self._final_pulses, armed=False)
                log.info("disarmed after %d pulses", self._final_pulses)
        self._send_trigger(now)

    # -- the wire -------------------------------------------------------------------------------
    def _send(self, msg: m.Message) -> None:
        """Frame, maybe corrupt, and write one message."""
        type_id, body = m.encode(msg)
        with self._lock:
            seq, self._seq = self._seq, (self._seq + 1) & 0xFF
            frame = self._maybe_corrupt(msg, encode_frame(seq, type_id, body))
        data = DELIMITER + frame
        self.frames_sent += 1
        self._write(data)

    def _maybe_corrupt(self, msg: m.Message, frame: bytes) -> bytes:
        how = None
        if self._corrupt and (self._corrupt[0][1] is None or isinstance(msg, self._corrupt[0][1])):
            how = self._corrupt.pop(0)[0]
        if how is None and self._rng.random() < self.bitflip_rate:
            how = "bitflip"
        if how is None and self._rng.random() < self.truncate_rate:
            how = "truncate"
        if how == "bitflip":
            i = self._rng.randrange(len(frame) - 1)
            return frame[:i] + bytes([frame[i] ^ (1 << self._rng.randrange(8))]) + frame[i + 1:]
        if how == "truncate":
            return frame[:self._rng.randrange(1, len(frame) - 1)]  # delimiter lost too
        return frame

    def _flush_noise(self) -> None:
        with self._lock:
            self._noise_credit += self.noise_rate * TICK_S
            extra = int(self._noise_credit)
            self._noise_credit -= extra
            if extra:
                self._noise += self._rng.randbytes(extra)
            chunk = bytes(self._noise[:NOISE_CHUNK])
            del self._noise[:NOISE_CHUNK]
        if chunk:
            self._write(chunk)

    def _write(self, data: bytes) -> None:
        """Write all of ``data`` unless the line is blocked (nobody reads) for WRITE_WAIT_S:
        then the rest is dropped, as a UART's bytes are when nobody listens."""
        with self._wlock:
            self._write_locked(data)

    def _write_locked(self, data: bytes) -> None:
        pty = self._pty
        if pty is None:
            self.bytes_dropped += len(data)
            return
        view = memoryview(data)
        deadline = time.monotonic() + WRITE_WAIT_S
        while view:
            try:
                view = view[os.write(pty.master, view):]
                continue
            except BlockingIOError:
                pass
            except OSError:
                break
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [pty.master], [], left)[1]:
                break
        self.bytes_dropped += len(view)
