"""MQTT payload schemas, version 1. JSON payloads are pydantic models (validated on
receipt, documented from the same classes); keypoint frames are a compact binary struct
because they are 99 % of the traffic.

Every JSON payload carries ``"v": 1``. A receiver rejects (and counts) anything that
does not validate, instead of guessing.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

VERSION = 1
View = Literal["left", "right", "rear", "front"]


class PayloadError(ValueError):
    """A payload that was rejected; ``kind`` groups rejections for counting and logging."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = VERSION

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


class BeltState(Payload):
    t: float = Field(description="host time of the controller report, Unix s")
    running: bool
    speed_m_s: float = Field(ge=0)
    incline_pct: float
    estop: bool = Field(description="emergency stop engaged")


class TriggerState(Payload):
    t: float
    armed: bool
    rate_hz: float = Field(ge=0)
    first_pulse_t: float | None = Field(description="host time of pulse 0, Unix s; null until armed")
    pulses_sent: int = Field(ge=0, description="pulses sent since arming (final once disarmed)")


class TreadmillEvent(Payload):
    t: float
    kind: Literal["estop", "estop_released", "fault", "link_lost", "link_restored",
                  "controller_silent", "controller_back"]
    detail: str = ""
    code: int | None = None


class TreadmillCommand(Payload):
    id: str = Field(min_length=1, max_length=64, description="correlates the reply")
    cmd: Literal["arm", "disarm", "ping", "status"]
    rate_hz: float | None = Field(default=None, gt=0, le=1000, description="arm only")


class CommandReply(Payload):
    id: str
    ok: bool
    error: str | None = None
    t: float


class LinkState(Payload):
    t: float
    connected: bool
    port: str
    firmware: str | None = None
    protocol: int | None = None
    clock_hz: int | None = None
    rejected_frames: int = 0
    lost_frames: int = Field(0, description="gaps in the controller's sequence numbers")
    reconnects: int = 0
    clock_drift_ppm: float | None = None
    controller_silent: bool = False


class SessionState(Payload):
    t: float
    state: Literal["idle", "recording", "closing"]
    session_id: int | None = None
    reason: str | None = Field(None, description="why it started or stopped")
    views: list[View] = []
    pulses_sent: int | None = Field(None, description="final pulse count, once closing")


class SessionCommand(Payload):
    action: Literal["start", "stop"]
    by: str = "manual"


class NodeEnd(Payload):
    session_id: int
    view: View
    frames: int = Field(ge=0, description="keypoint frames published for the session")
    captured: int = Field(ge=0, description="camera frames captured")
    missed_triggers: int = Field(ge=0)
    dropped: int = Field(ge=0, description="frames captured but not published")
    backlog_at_train_end: int = Field(0, ge=0, description="frames still waiting for inference when the "
                                      "train stopped; all finished before this report")
    simulated: bool = False


class NodeInfo(Payload):
    view: View
    width: int = Field(gt=0, description="image width, px")
    height: int = Field(gt=0, description="image height, px")
    facing: Literal["left", "right"] | None = Field(None, description="the way the patient faces (side views)")
    camera: str = Field(description="camera backend and model")
    model: str = Field(description="pose model, or 'simulated walker'")
    simulated: bool = False


class SessionSummary(Payload):
    session_id: int
    started_t: float
    ended_t: float
    reason: str
    pulses_sent: int
    frames: dict[str, int]
    dropped: dict[str, int]
    missing: dict[str, list[tuple[int, int]]] = Field({}, description="per view, the spans [first, end) of trigger "
                                                      "indices it has no frame for (a node down, a spool full)")
    complete: bool = Field(description="every node reported every pulse")
    belt_speed_m_s: float | None = Field(None, description="median belt speed while walking")
    cadence_steps_per_min: float | None = Field(None, description="from the gait analysis; null if not computed")
    findings: list[str] = Field([], description="the gait analysis's findings, one sentence each")
    analysis_error: str | None = Field(None, description="why the gait analysis could not run")


class Presence(Payload):
    daemon: str
    online: bool
    seq: int = Field(ge=0, description="birth counter; a death with an older seq is stale")
    t: float
    version: str = ""
    host: str = ""
    simulated: bool = False


Figure = float | int | str | bool | None


class DiagCommand(Payload):
    cmd: str = Field(min_length=1, max_length=32, description="ping, health, config, set, selftest, restart, "
                     "log_level; still on the technician topic")
    args: list[str] = Field([], max_length=8, description="set: KEY VALUE (VALUE is JSON or a plain string); "
                            "log_level: LEVEL")


class DiagReply(Payload):
    daemon: str
    cmd: str | None = Field(description="the command answered; null when it could not be read")
    ok: bool
    error: str | None = None
    result: dict[str, Any] = Field({}, description="what the command returns (still: jpeg_b64, width, height)")
    t: float


class DiagHealth(Payload):
    daemon: str
    t: float
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
    daemon: str
    t: float
    kind: str = Field(description="e.g. camera_lost, inference_backlog, disk_low, controller_silent, "
                      "spool_filling, setting_changed, restart")
    level: Literal["info", "warning", "error"]
    active: bool = Field(description="true: raised (or happened); false: cleared")
    detail: str = ""


JSON_PAYLOADS: tuple[type[Payload], ...] = (
    BeltState, TriggerState, TreadmillEvent, TreadmillCommand, CommandReply, LinkState,
    SessionState, SessionCommand, NodeEnd, NodeInfo, SessionSummary, Presence,
    DiagCommand, DiagReply, DiagHealth, DiagEvent,
)
P = TypeVar("P", bound=Payload)


def decode(model: type[P], payload: bytes) -> P:
    """Validate a JSON payload; raises PayloadError(kind=model name) with the first problem."""
    try:
        return model.model_validate_json(payload)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        raise PayloadError(model.__name__, f"{where}: {err['msg']}") from None


# --- keypoint frames (binary) -------------------------------------------------------------
# header: version u8, flags u8, session u32, trigger index u32, t f64 (Unix s, sensor time)
# body (only when a person was found): 33 × (x, y, z as int16 in 1/8 px, visibility u8 /255)
_HEADER = struct.Struct("<BBIId")
_LANDMARKS = np.dtype([("x", "<i2"), ("y", "<i2"), ("z", "<i2"), ("vis", "u1")])
FLAG_SIMULATED = 0x01
FLAG_FOUND = 0x02
KEYPOINT_SCALE = 8.0  # 1/8 px resolution, ±4096 px range
N_LANDMARKS = 33


@dataclass(frozen=True)
class KeypointFrame:
    session_id: int
    index: int
    t: float
    lm: np.ndarray | None  # (33, 4): x_px, y_px, z, visibility
    simulated: bool = False


def encode_keypoints(frame: KeypointFrame) -> bytes:
    found = frame.lm is not None and not np.isnan(frame.lm[0, 0])
    flags = (FLAG_SIMULATED if frame.simulated else 0) | (FLAG_FOUND if found else 0)
    head = _HEADER.pack(VERSION, flags, frame.session_id, frame.index, frame.t)
    if not found:
        return head
    body = np.empty(N_LANDMARKS, dtype=_LANDMARKS)
    scaled = np.clip(np.round(frame.lm[:, :3] * KEYPOINT_SCALE), -32768, 32767)
    body["x"], body["y"], body["z"] = scaled[:, 0], scaled[:, 1], scaled[:, 2]
    body["vis"] = np.clip(np.round(frame.lm[:, 3] * 255), 0, 255)
    return head + body.tobytes()


def decode_keypoints(payload: bytes) -> KeypointFrame:
    if len(payload) < _HEADER.size:
        raise PayloadError("KeypointFrame", f"{len(payload)} bytes is shorter than the header")
    version, flags, session_id, index, t = _HEADER.unpack_from(payload)
    if version != VERSION:
        raise PayloadError("KeypointFrame", f"version {version} is not supported (expected {VERSION})")
    body = payload[_HEADER.size:]
    expected = _LANDMARKS.itemsize * N_LANDMARKS if flags & FLAG_FOUND else 0
    if len(body) != expected:
        raise PayloadError("KeypointFrame", f"body is {len(body)} bytes, expected {expected}")
    lm = None
    if flags & FLAG_FOUND:
        arr = np.frombuffer(body, dtype=_LANDMARKS)
        lm = np.empty((N_LANDMARKS, 4))
        lm[:, 0], lm[:, 1], lm[:, 2] = (arr[k] / KEYPOINT_SCALE for k in ("x", "y", "z"))
        lm[:, 3] = arr["vis"] / 255.0
    return KeypointFrame(session_id, index, t, lm, bool(flags & FLAG_SIMULATED))
