"""MQTT payload schemas, version 1. JSON payloads are pydantic models (validated on
receipt, documented from the same classes); keypoint frames are a compact binary struct
because they are 99 % of the traffic.

Every JSON payload carries ``"v": 1``. A receiver rejects (and counts) anything that
does not validate, instead of guessing. Validation is the rig's first line against hostile
or broken senders, so every field is bounded by what a treadmill, a camera and this software
can really produce: numbers finite (no NaN/Infinity anywhere), times plausible Unix times,
speeds and rates in a treadmill's range, counts and strings of bounded size, and the whole
payload of bounded size.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

VERSION = 1
View = Literal["left", "right", "rear", "front"]

UNIX_T_MIN, UNIX_T_MAX = 1e9, 4102444800.0  # 2001-09-09 .. 2100-01-01: a clock that is set
UnixTime = Annotated[float, Field(ge=UNIX_T_MIN, le=UNIX_T_MAX)]
COUNT_MAX = 2**31 - 1  # frames, pulses, counters: a day at 1000 Hz is 8.6e7
Count = Annotated[int, Field(ge=0, le=COUNT_MAX)]
SessionId = Annotated[int, Field(ge=1, le=2**32 - 1)]  # u32 in keypoint frames
Name = Annotated[str, Field(max_length=64)]  # ids, daemon names, versions, "by"
Sentence = Annotated[str, Field(max_length=1000)]  # reasons, details, errors
BELT_SPEED_MAX_M_S = 8.0  # the fastest clinical/running treadmills reach ~25 km/h
INCLINE_MAX_PCT = 30.0  # treadmills incline to ~+25 %, decline to ~-10 %
RATE_MAX_HZ = 1000.0
JSON_MAX_BYTES = 64 * 1024


class PayloadError(ValueError):
    """A payload that was rejected; ``kind`` groups rejections for counting and logging."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_max_length=4096)
    max_bytes: ClassVar[int] = JSON_MAX_BYTES  # a larger payload is rejected before it is parsed
    v: Literal[1] = VERSION

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


class BeltState(Payload):
    t: UnixTime = Field(description="host time of the controller report, Unix s")
    running: bool
    speed_m_s: float = Field(ge=0, le=BELT_SPEED_MAX_M_S)
    incline_pct: float = Field(ge=-INCLINE_MAX_PCT, le=INCLINE_MAX_PCT)
    estop: bool = Field(description="emergency stop engaged")


class TriggerState(Payload):
    t: UnixTime
    armed: bool
    rate_hz: float = Field(ge=0, le=RATE_MAX_HZ, description="more than 0 when armed")
    first_pulse_t: UnixTime | None = Field(description="host time of pulse 0, Unix s; null until armed")
    pulses_sent: Count = Field(description="pulses sent since arming (final once disarmed)")
    train_lost: bool = Field(False, description="the controller reset while this train ran: it is over, and "
                             "pulses_sent is an upper bound (pulses by the time the reset was seen); the "
                             "cameras' frames tell the true count")

    @model_validator(mode="after")
    def _armed_train_has_a_rate(self) -> "TriggerState":
        if self.armed and self.rate_hz <= 0:
            raise ValueError("an armed train needs a rate above 0 Hz")
        return self


class TreadmillEvent(Payload):
    t: UnixTime
    kind: Literal["estop", "estop_released", "fault", "link_lost", "link_restored",
                  "controller_silent", "controller_back", "controller_reset"]
    detail: Sentence = ""
    code: int | None = Field(None, ge=0, le=65535)


class TreadmillCommand(Payload):
    id: str = Field(min_length=1, max_length=64, description="correlates the reply")
    cmd: Literal["arm", "disarm", "ping", "status"]
    rate_hz: float | None = Field(default=None, gt=0, le=1000, description="arm only")


class CommandReply(Payload):
    id: Name
    ok: bool
    error: Sentence | None = None
    t: UnixTime


class LinkState(Payload):
    t: UnixTime
    connected: bool
    port: Sentence
    firmware: Name | None = None
    protocol: int | None = Field(None, ge=0, le=255)
    clock_hz: int | None = Field(None, gt=0, le=10**10)
    rejected_frames: Count = 0
    lost_frames: Count = Field(0, description="gaps in the controller's sequence numbers")
    reconnects: Count = 0
    clock_drift_ppm: float | None = Field(None, ge=-1e4, le=1e4)
    controller_silent: bool = False


class SessionState(Payload):
    t: UnixTime
    state: Literal["idle", "recording", "closing"]
    session_id: SessionId | None = None
    reason: Sentence | None = Field(None, description="why it started or stopped")
    views: list[View] = Field([], max_length=4)
    pulses_sent: Count | None = Field(None, description="final pulse count, once closing")


class SessionCommand(Payload):
    action: Literal["start", "stop"]
    by: Name = Field("manual", description="who asked (for the log), at most 64 characters")


class NodeEnd(Payload):
    session_id: SessionId
    view: View = Field(description="must name the view of the topic it comes on")
    frames: Count = Field(description="keypoint frames published for the session")
    captured: Count = Field(description="camera frames captured")
    missed_triggers: Count
    dropped: Count = Field(description="frames captured but not published")
    backlog_at_train_end: Count = Field(0, description="frames still waiting for inference when the "
                                        "train stopped; all finished before this report")
    tracked: Count = Field(0, description="frames whose gait points were tracked between keyframes")
    spooled: Count = Field(0, description="frames that waited on disk as compressed crops (node behind)")
    simulated: bool = False


class NodeInfo(Payload):
    view: View
    width: int = Field(gt=0, le=16384, description="image width, px")
    height: int = Field(gt=0, le=16384, description="image height, px")
    facing: Literal["left", "right"] | None = Field(None, description="the way the patient faces (side views)")
    camera: Sentence = Field(description="camera backend and model")
    model: Sentence = Field(description="pose model, or 'simulated walker'")
    pacing: dict[str, float | int | str] = Field({}, description="the node's self-measured speed: model "
                                                  "times, chosen keyframe interval, headroom")
    simulated: bool = False
    clips_url: str | None = Field(None, max_length=200, pattern=r"^https?://[^\s/?#]+$",
                                  description="where the node serves its review video (docs/video.md); "
                                  "none: it keeps none")


class SessionSummary(Payload):
    session_id: SessionId
    started_t: UnixTime
    ended_t: UnixTime
    reason: Sentence
    pulses_sent: Count
    frames: dict[View, Count]
    dropped: dict[View, Count]
    complete: bool = Field(description="every node reported every pulse, and nothing conflicted or was lost")
    problem: Sentence | None = Field(None, description="why the session is not complete (missing views, "
                                     "short views, conflicting frames, frames lost to a full disk)")
    conflicts: dict[View, Count] = Field({}, description="second, different frames for an index already "
                                         "stored (the first was kept), per view")
    frames_lost: dict[View, Count] = Field({}, description="frames received but lost to a failed database "
                                           "write (full disk), per view")
    rejected: dict[Name, Count] = Field({}, max_length=64, description="messages the coordinator rejected while "
                                        "the session was recorded, per kind (a payload model or a rule)")
    missing: dict[View, list[tuple[Count, Count]]] = Field({}, description="per view, the spans [first, end) of "
                                                           "trigger indices it has no frame for (a node down, a spool full)")
    belt_speed_m_s: float | None = Field(None, description="median belt speed while walking")
    cadence_steps_per_min: float | None = Field(None, description="from the gait analysis; null if not computed")
    findings: list[Sentence] = Field([], max_length=64,
                                     description="the gait analysis's findings, one sentence each")
    analysis_error: Sentence | None = Field(None, description="why the gait analysis could not run")


ERASED_MAX = 20_000  # sessions erased over the rig's life that one message can list


class ErasedSessions(Payload):
    max_bytes: ClassVar[int] = 256 * 1024
    t: UnixTime = Field(description="when the coordinator last added to the list")
    session_ids: list[SessionId] = Field(max_length=ERASED_MAX, description="every session erased with its "
                                         "patient, ascending: a node deletes their review video")


class Presence(Payload):
    daemon: Name
    online: bool
    seq: int = Field(ge=0, le=2**63 - 1, description="birth counter; a death with an older seq is stale")
    t: UnixTime
    version: Name = ""
    host: Name = ""
    simulated: bool = False


Figure = float | int | str | bool | None


class DiagCommand(Payload):
    cmd: str = Field(min_length=1, max_length=32, description="ping, health, config, set, selftest, restart, "
                     "log_level; still on the technician topic")
    args: list[Annotated[str, Field(max_length=1024)]] = Field([], max_length=8, description="set: KEY VALUE (VALUE is JSON or a plain string); "
                            "log_level: LEVEL")


class DiagReply(Payload):
    max_bytes: ClassVar[int] = 32 * 1024 * 1024  # a still frame, base64
    daemon: Name
    cmd: Name | None = Field(description="the command answered; null when it could not be read")
    ok: bool
    error: str | None = None
    result: dict[str, Any] = Field({}, description="what the command returns (still: jpeg_b64, width, height)")
    t: UnixTime


class DiagHealth(Payload):
    daemon: Name
    t: UnixTime
    period_s: float = Field(description="the next report is due this long after t")
    uptime_s: float
    cpu_load_1m: float | None
    cpu_temp_c: float | None = Field(description="from /sys/class/thermal; null where there is none")
    mem_rss_mb: float | None = Field(description="this process's resident memory")
    mem_available_mb: float | None
    disk_free_mb: float | None = Field(description="on the daemon's state directory")
    broker_reconnects: int
    rejected_payloads: int = Field(description="MQTT payloads (and diag commands) that did not validate")
    commands_refused: int = Field(description="diag commands answered with an error (malformed, unknown, "
                                  "bad arguments, not allowed on their topic)")
    figures: dict[str, Figure] = Field({}, description="the daemon's own figures, units in the names")
    problems: dict[str, str] = Field({}, description="problem kind -> detail, for each problem active now")


class DiagEvent(Payload):
    daemon: Name
    t: UnixTime
    kind: Name = Field(description="e.g. camera_lost, inference_backlog, disk_low, controller_silent, "
                      "spool_filling, setting_changed, restart")
    level: Literal["info", "warning", "error"]
    active: bool = Field(description="true: raised (or happened); false: cleared")
    detail: str = ""


JSON_PAYLOADS: tuple[type[Payload], ...] = (
    BeltState, TriggerState, TreadmillEvent, TreadmillCommand, CommandReply, LinkState,
    SessionState, SessionCommand, NodeEnd, NodeInfo, SessionSummary, ErasedSessions, Presence,
    DiagCommand, DiagReply, DiagHealth, DiagEvent,
)
P = TypeVar("P", bound=Payload)


def decode(model: type[P], payload: bytes) -> P:
    """Validate a JSON payload; raises PayloadError(kind=model name) with the first problem.
    The message quotes no input beyond a short field path, so it is safe to log."""
    if len(payload) > model.max_bytes:
        raise PayloadError(model.__name__, f"payload is {len(payload)} bytes, more than {model.max_bytes}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        raise PayloadError(model.__name__, f"{clip(where, 80)}: {err['msg']}") from None


def clip(text: str, limit: int = 120) -> str:
    """Outside input made safe for a log line: printable, and at most ``limit`` characters."""
    shown = text if text.isprintable() else text.encode("unicode_escape", "replace").decode("ascii")
    return shown if len(shown) <= limit else f"{shown[:limit]}... ({len(text)} characters)"


# --- keypoint frames (binary) -------------------------------------------------------------
# header: version u8, flags u8, session u32, trigger index u32, t f64 (Unix s, sensor time)
# body (only when a person was found): 33 × (x, y, z as int16 in 1/8 px, visibility u8 /255),
# then, on tracked frames only (FLAG_TRACKED), a u64 bit mask of interpolated landmarks.
# A landmark the model could not place (non-finite) is sent as (0, 0, 0) with visibility 0.
_HEADER = struct.Struct("<BBIId")
_LANDMARKS = np.dtype([("x", "<i2"), ("y", "<i2"), ("z", "<i2"), ("vis", "u1")])
FLAG_SIMULATED = 0x01
FLAG_FOUND = 0x02
FLAG_TRACKED = 0x04  # gait points tracked from the last keyframe, not inferred on this frame
_MASK = struct.Struct("<Q")
_FLAGS_KNOWN = FLAG_SIMULATED | FLAG_FOUND | FLAG_TRACKED
KEYPOINT_SCALE = 8.0  # 1/8 px resolution, ±4096 px range
N_LANDMARKS = 33


@dataclass(frozen=True)
class KeypointFrame:
    session_id: int
    index: int
    t: float
    lm: np.ndarray | None  # (33, 4): x_px, y_px, z, visibility
    simulated: bool = False
    tracked: bool = False  # found by optical flow from the last keyframe (False: inferred)
    interpolated: np.ndarray | None = None  # (33,) bool, tracked frames: points the flow lost


def encode_keypoints(frame: KeypointFrame) -> bytes:
    found = frame.lm is not None and not np.isnan(frame.lm[0, 0])
    tracked = found and frame.tracked
    flags = (FLAG_SIMULATED if frame.simulated else 0) | (FLAG_FOUND if found else 0) | (FLAG_TRACKED if tracked else 0)
    head = _HEADER.pack(VERSION, flags, frame.session_id, frame.index, frame.t)
    if not found:
        return head
    body = np.empty(N_LANDMARKS, dtype=_LANDMARKS)
    seen = np.isfinite(frame.lm).all(axis=1)
    lm = frame.lm if seen.all() else np.where(seen[:, None], frame.lm, 0.0)
    scaled = np.clip(np.round(lm[:, :3] * KEYPOINT_SCALE), -32768, 32767)
    body["x"], body["y"], body["z"] = scaled[:, 0], scaled[:, 1], scaled[:, 2]
    body["vis"] = np.clip(np.round(lm[:, 3] * 255), 0, 255)
    if not tracked:
        return head + body.tobytes()
    marks = np.zeros(N_LANDMARKS, bool) if frame.interpolated is None else np.asarray(frame.interpolated, bool)
    return head + body.tobytes() + _MASK.pack(sum(1 << int(i) for i in np.flatnonzero(marks)))


def decode_keypoints(payload: bytes) -> KeypointFrame:
    """Validate a binary frame; raises PayloadError(kind="KeypointFrame"). Integer landmarks
    cannot be NaN; the time must be finite and a plausible Unix time (or a small test time)."""
    if len(payload) < _HEADER.size:
        raise PayloadError("KeypointFrame", f"{len(payload)} bytes is shorter than the header")
    version, flags, session_id, index, t = _HEADER.unpack_from(payload)
    if version != VERSION:
        raise PayloadError("KeypointFrame", f"version {version} is not supported (expected {VERSION})")
    if flags & ~_FLAGS_KNOWN:
        raise PayloadError("KeypointFrame", f"unknown flags 0x{flags:02x}")
    if session_id == 0:
        raise PayloadError("KeypointFrame", "session id 0 (sessions count from 1)")
    if not 0.0 <= t <= UNIX_T_MAX:  # also False for NaN
        raise PayloadError("KeypointFrame", f"time {t!r} is not a Unix time")
    body = payload[_HEADER.size:]
    found, tracked = bool(flags & FLAG_FOUND), bool(flags & FLAG_FOUND and flags & FLAG_TRACKED)
    points_size = _LANDMARKS.itemsize * N_LANDMARKS
    expected = (points_size if found else 0) + (_MASK.size if tracked else 0)
    if len(body) != expected:
        raise PayloadError("KeypointFrame", f"body is {len(body)} bytes, expected {expected}")
    lm, marks = None, None
    if found:
        arr = np.frombuffer(body[:points_size], dtype=_LANDMARKS)
        lm = np.empty((N_LANDMARKS, 4))
        lm[:, 0], lm[:, 1], lm[:, 2] = (arr[k] / KEYPOINT_SCALE for k in ("x", "y", "z"))
        lm[:, 3] = arr["vis"] / 255.0
    if tracked:
        bits = _MASK.unpack_from(body, points_size)[0]
        marks = np.array([(bits >> i) & 1 for i in range(N_LANDMARKS)], bool)
    return KeypointFrame(session_id, index, t, lm, bool(flags & FLAG_SIMULATED), tracked, marks)
