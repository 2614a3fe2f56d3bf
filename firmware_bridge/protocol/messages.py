"""The messages of the treadmill serial protocol: one table (type id, name, direction,
struct layout, field units and docs) from which encoding, decoding, the receivers' body
size checks and ``docs/serial-protocol.md`` are all derived, so they cannot disagree.

Bodies are little-endian (the controller is a little-endian MCU); booleans are one byte.
Pure: no I/O.
"""
from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

PROTOCOL_VERSION = 1
CONTROLLER = "controller → host"
HOST = "host → controller"


class MessageError(ValueError):
    """A body that does not fit its message type."""


class InvalidMessage(MessageError):
    """A well-formed message whose values no working controller sends (a speed of 65 m/s,
    a clock of 2^64 - 1, an armed train at 0 Hz); ``key`` names the message and field."""

    def __init__(self, key: str, detail: str):
        super().__init__(f"{key}: {detail}")
        self.key = key


# What a treadmill and its controller can produce. A 64-bit clock at 1 GHz needs 146 years
# to reach 2^62; anything above is garbage (an erased 0xFF.. word, a corrupted counter).
MAX_CLOCK = 2**62
MIN_CLOCK_HZ, MAX_CLOCK_HZ = 1_000, 1_000_000_000
MAX_SPEED_MM_S = 8_000  # 28.8 km/h: no clinical (or sprint) treadmill runs faster
MIN_INCLINE_PERMILLE, MAX_INCLINE_PERMILLE = -250, 400
MAX_RATE_MHZ = 1_000_000  # 1 kHz, the ARM limit


class ErrorCode(IntEnum):
    """Why the controller refused a command (sent in ERROR)."""
    UNKNOWN_COMMAND = 1
    BAD_LENGTH = 2
    BAD_ARGUMENT = 3
    ALREADY_ARMED = 4
    ESTOP_ACTIVE = 5

    @property
    def meaning(self) -> str:
        return ERROR_MEANINGS[self]


ERROR_MEANINGS = {
    ErrorCode.UNKNOWN_COMMAND: "the message type is not a command this controller knows",
    ErrorCode.BAD_LENGTH: "the command's body length does not match its layout",
    ErrorCode.BAD_ARGUMENT: "an argument is out of range (arm rate 0 or above 1000 Hz)",
    ErrorCode.ALREADY_ARMED: "arm while the trigger train runs; disarm first",
    ErrorCode.ESTOP_ACTIVE: "arm refused while the emergency stop is engaged",
}


class FaultCode(IntEnum):
    """Conditions the controller reports on its own (sent in FAULT)."""
    MOTOR_OVERCURRENT = 1
    BELT_SPEED_MISMATCH = 2
    TRIGGER_OVERRUN = 3
    WATCHDOG_RESET = 4
    RX_OVERFLOW = 5

    @property
    def meaning(self) -> str:
        return FAULT_MEANINGS[self]


FAULT_MEANINGS = {
    FaultCode.MOTOR_OVERCURRENT: "belt motor current above its limit; the belt was stopped",
    FaultCode.BELT_SPEED_MISMATCH: "measured belt speed differs from the set speed by > 10 %",
    FaultCode.TRIGGER_OVERRUN: "a trigger pulse was late by more than a tenth of its period",
    FaultCode.WATCHDOG_RESET: "the controller restarted after its watchdog fired",
    FaultCode.RX_OVERFLOW: "the controller's receive buffer overflowed; host bytes were lost",
}


def f(fmt: str, unit: str, doc: str, valid: tuple[int, int] | None = None):
    """A message field: struct format char, unit, meaning and, for controller messages, the
    inclusive range a working controller sends (used by codec, validation and doc)."""
    return dataclasses.field(metadata={"fmt": fmt, "unit": unit, "doc": doc, "valid": valid})


class Message:
    """Base of every message dataclass; subclasses are registered by @message."""
    TYPE: ClassVar[int]
    NAME: ClassVar[str]
    DIRECTION: ClassVar[str]
    DOC: ClassVar[str]
    STRUCT: ClassVar[struct.Struct]
    RULES: ClassVar[tuple[str, ...]] = ()  # cross-field rules, for the doc
    RANGES: ClassVar[tuple[tuple[str, int, int, str], ...]]  # (field, low, high, unit)

    def problems(self, clock_hz: int | None) -> list[tuple[str, str]]:
        """(field, why) for each cross-field rule broken; ``clock_hz`` from the HELLO if known."""
        return []


MESSAGES: dict[int, type[Message]] = {}


def message(type_id: int, name: str, direction: str, doc: str):
    """Register a dataclass as a message and build its struct layout from its fields."""
    def wrap(cls):
        cls = dataclass(frozen=True)(cls)
        fmt = "<" + "".join(fl.metadata["fmt"] for fl in dataclasses.fields(cls))
        cls.TYPE, cls.NAME, cls.DIRECTION, cls.DOC = type_id, name, direction, doc
        cls.STRUCT = struct.Struct(fmt)
        cls.RANGES = tuple((fl.name, *fl.metadata["valid"], fl.metadata["unit"])
                           for fl in dataclasses.fields(cls) if fl.metadata["valid"])
        assert type_id not in MESSAGES, f"duplicate message type {type_id:#x}"
        MESSAGES[type_id] = cls
        return cls
    return wrap


# --- controller → host ------------------------------------------------------------------
@message(0x01, "HELLO", CONTROLLER, "Identity; sent at boot and in answer to STATUS_REQUEST.")
class Hello(Message):
    fw_major: int = f("B", "", "firmware version, major")
    fw_minor: int = f("B", "", "firmware version, minor")
    fw_patch: int = f("B", "", "firmware version, patch")
    protocol: int = f("B", "", f"protocol version (this document: {PROTOCOL_VERSION})")
    clock_hz: int = f("I", "Hz", "nominal rate of the controller clock", (MIN_CLOCK_HZ, MAX_CLOCK_HZ))

    @property
    def firmware(self) -> str:
        return f"{self.fw_major}.{self.fw_minor}.{self.fw_patch}"


@message(0x02, "BELT_STATE", CONTROLLER,
         "Belt state; sent on every change (speed changes at most every 100 ms) and every ~1 s.")
class BeltStateMsg(Message):
    clock: int = f("Q", "ticks", "controller clock when the state was sampled", (0, MAX_CLOCK))
    running: bool = f("?", "", "belt motor running")
    speed_mm_s: int = f("H", "mm/s", "belt speed", (0, MAX_SPEED_MM_S))
    incline_permille: int = f("h", "0.1 %", "incline, tenths of a percent",
                              (MIN_INCLINE_PERMILLE, MAX_INCLINE_PERMILLE))
    estop: bool = f("?", "", "emergency stop engaged")


@message(0x03, "TRIGGER_STATE", CONTROLLER,
         "Trigger-train state; sent on arm and on disarm (before their ACK) and every ~1 s while "
         "armed. After disarm, pulses_sent is final.")
class TriggerStateMsg(Message):
    clock: int = f("Q", "ticks", "controller clock when the state was sampled", (0, MAX_CLOCK))
    armed: bool = f("?", "", "the train is running")
    rate_mhz: int = f("I", "mHz", "pulse rate; 0 if never armed", (0, MAX_RATE_MHZ))
    first_pulse_clock: int = f("Q", "ticks", "clock of pulse 0; 0 if never armed", (0, MAX_CLOCK))
    pulses_sent: int = f("I", "", "pulses emitted since arming (pulse k at first + k/rate)")
    RULES = ("armed, or pulses_sent > 0: rate_mhz ≥ 1 and first_pulse_clock > 0",
             "first_pulse_clock ≤ clock + clock_hz (pulse 0 follows ARM within a second)",
             "pulses_sent ≤ floor((clock − first_pulse_clock) · rate / clock_hz) + 2 "
             "(no more pulses than the train can have emitted by `clock`; one pulse of slack)")

    def problems(self, clock_hz: int | None) -> list[tuple[str, str]]:
        out = []
        if (self.armed or self.pulses_sent) and not (self.rate_mhz and self.first_pulse_clock):
            out.append(("rate_mhz", f"a train with rate {self.rate_mhz} mHz and first pulse at clock "
                        f"{self.first_pulse_clock} cannot be armed or have sent {self.pulses_sent} pulses"))
        elif clock_hz and self.first_pulse_clock:
            if self.first_pulse_clock > self.clock + clock_hz:
                out.append(("first_pulse_clock", f"pulse 0 at clock {self.first_pulse_clock} is more "
                            f"than a second after the sample clock {self.clock}"))
            else:
                ticks = max(0, self.clock - self.first_pulse_clock)
                possible = ticks * self.rate_mhz // (clock_hz * 1000) + 2
                if self.pulses_sent > possible:
                    out.append(("pulses_sent", f"{self.pulses_sent} pulses, but at most {possible} "
                                "can have been emitted by the sample clock"))
        return out


@message(0x04, "HEARTBEAT", CONTROLLER, "Liveness and clock sample; sent every ~250 ms.")
class Heartbeat(Message):
    clock: int = f("Q", "ticks", "controller clock at transmission", (0, MAX_CLOCK))


@message(0x05, "ACK", CONTROLLER, "A command was accepted and executed.")
class Ack(Message):
    acked_seq: int = f("B", "", "seq of the command frame")
    command: int = f("B", "", "type of the command")


@message(0x06, "ERROR", CONTROLLER, "A command was refused; nothing was executed.")
class Error(Message):
    acked_seq: int = f("B", "", "seq of the command frame")
    command: int = f("B", "", "type of the command")
    code: int = f("B", "", "ErrorCode")


@message(0x07, "FAULT", CONTROLLER, "A fault condition, reported once when it occurs.")
class Fault(Message):
    clock: int = f("Q", "ticks", "controller clock at the fault", (0, MAX_CLOCK))
    code: int = f("H", "", "FaultCode")


# --- host → controller ------------------------------------------------------------------
@message(0x81, "PING", HOST, "Liveness check; answered by ACK.")
class Ping(Message):
    pass


@message(0x82, "ARM", HOST, "Start the trigger train; the first pulse follows within ~10 ms.")
class Arm(Message):
    rate_mhz: int = f("I", "mHz", "pulse rate, 1..1000000")


@message(0x83, "DISARM", HOST, "Stop the trigger train (ACKed also when not armed).")
class Disarm(Message):
    pass


@message(0x84, "STATUS_REQUEST", HOST,
         "Ask for the full state: answered by HELLO, BELT_STATE, TRIGGER_STATE, then ACK.")
class StatusRequest(Message):
    pass


CONTROLLER_MESSAGES = {t: c for t, c in MESSAGES.items() if c.DIRECTION == CONTROLLER}
HOST_MESSAGES = {t: c for t, c in MESSAGES.items() if c.DIRECTION == HOST}
# What each side accepts; given to FrameDecoder(body_sizes=...).
CONTROLLER_BODY_SIZES = {t: c.STRUCT.size for t, c in CONTROLLER_MESSAGES.items()}
HOST_BODY_SIZES = {t: c.STRUCT.size for t, c in HOST_MESSAGES.items()}


def encode(msg: Message) -> tuple[int, bytes]:
    """(type id, body) of a message; MessageError if a field is out of range."""
    try:
        return msg.TYPE, msg.STRUCT.pack(*dataclasses.astuple(msg))
    except struct.error as e:
        raise MessageError(f"{msg.NAME}: {e}") from None


def decode(msg_type: int, body: bytes) -> Message:
    cls = MESSAGES.get(msg_type)
    if cls is None:
        raise MessageError(f"unknown message type {msg_type:#04x}")
    if len(body) != cls.STRUCT.size:
        raise MessageError(f"{cls.NAME}: body is {len(body)} bytes, expected {cls.STRUCT.size}")
    return cls(*cls.STRUCT.unpack(body))


def validate(msg: Message, clock_hz: int | None = None) -> None:
    """Raise InvalidMessage for the first field out of its range or rule broken; the codec
    itself accepts any value that fits the wire type, as the receiver must judge them."""
    for name, low, high, unit in msg.RANGES:
        value = getattr(msg, name)
        if not low <= value <= high:
            raise InvalidMessage(f"{msg.NAME}.{name}", f"{value}{' ' + unit if unit else ''} is outside {low}..{high}")
    for field, why in msg.problems(clock_hz):
        raise InvalidMessage(f"{msg.NAME}.{field}", why)


def name_of(msg_type: int) -> str:
    cls = MESSAGES.get(msg_type)
    return cls.NAME if cls else f"{msg_type:#04x}"


def describe_error(code: int) -> str:
    """e.g. 'ALREADY_ARMED: arm while the trigger train runs; disarm first'."""
    try:
        e = ErrorCode(code)
        return f"{e.name}: {e.meaning}"
    except ValueError:
        return f"error code {code}"


def describe_fault(code: int) -> str:
    try:
        fc = FaultCode(code)
        return f"{fc.name}: {fc.meaning}"
    except ValueError:
        return f"fault code {code}"
