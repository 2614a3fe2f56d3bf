"""TOML configuration, one file per role (coordinator, bridge, node), validated at start.

A broken file stops the daemon with one message naming the file, the key and what is
wrong, e.g. ``/etc/gaitrig/node.toml: camera.backend: Input should be 'picamera2', …``.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

View = Literal["left", "right", "rear", "front"]
ALL_VIEWS: tuple[str, ...] = ("left", "right", "rear", "front")


class ConfigError(Exception):
    """A configuration problem, with the file and key in the message."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


RIG_ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"  # a topic level: no '/', '+', '#', nothing empty


class MqttSettings(Section):
    host: str = Field("localhost", description="broker host")
    port: int = Field(1883, ge=1, le=65535, description="broker port (8883 with TLS)")
    rig_id: str = Field("rig1", pattern=RIG_ID_PATTERN, description="second level of every topic")
    username: str | None = Field(None, description="broker account of this daemon")
    password_file: Path | None = Field(None, description="file holding the account's password")
    tls_ca_file: Path | None = Field(None, description="CA certificate: enables TLS")
    keepalive_s: int = Field(10, ge=2, le=600, description="MQTT keepalive; the last will fires after 1.5x")
    max_queued_messages: int = Field(10000, ge=10, description="in-memory bound while disconnected")

    def password(self) -> str | None:
        return self.password_file.read_text().strip() if self.password_file else None


class SerialSettings(Section):
    port: str = Field(description="prefer /dev/serial/by-id/... so a replug finds the same device")
    baudrate: int = Field(250000, gt=0)
    reconnect_min_s: float = Field(0.2, gt=0)
    reconnect_max_s: float = Field(5.0, gt=0)
    silent_after_s: float = Field(2.0, gt=0, description="no heartbeat for this long: controller silent")
    command_timeout_s: float = Field(0.25, gt=0)
    command_retries: int = Field(4, ge=0)


class BridgeConfig(Section):
    mqtt: MqttSettings = MqttSettings()
    serial: SerialSettings


class SessionSettings(Section):
    walking_speed_min_m_s: float = Field(0.3, gt=0, description="belt speed that counts as walking")
    start_after_s: float = Field(2.0, ge=0, description="belt at walking speed this long starts a session")
    fps: float = Field(60.0, gt=0, le=1000, description="trigger rate the train is armed at")
    end_timeout_s: float = Field(10.0, gt=0, description="wait this long for every node's end count, counted "
                                 "from the last frame received (a node finishing its backlog is waited for)")
    views: list[View] = list(ALL_VIEWS)

    @field_validator("views")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("must list each view at most once, and at least one")
        return v


class StorageSettings(Section):
    database: Path = Path("/var/lib/gaitrig/gaitrig.sqlite")
    reserve_mb: float = Field(16.0, ge=0, description="with less room than this left for the database (disk "
                              "space or file size limit), frames are counted as lost instead of stored, so "
                              "sessions can still be closed and analysed")


class WebSettings(Section):
    clinic_database: Path | None = Field(None, description="the tablet's own SQLite file (accounts, patients, "
                                         "audit log); default: clinic.sqlite beside storage.database")
    tls_certfile: Path | None = Field(None, description="PEM certificate: serve HTTPS (with tls_keyfile)")
    tls_keyfile: Path | None = Field(None, description="PEM private key of tls_certfile")
    lockout_after_failures: int = Field(5, ge=1, le=100, description="wrong passwords in a row that lock an account")
    lockout_s: float = Field(900.0, gt=0, description="how long a locked account stays locked")
    session_idle_s: float = Field(1800.0, gt=0, description="a login ends after this long without a request")
    session_max_s: float = Field(43200.0, gt=0, description="a login ends this long after it began, in any case")
    video_token_file: Path | None = Field(None, description="the camera nodes' clip token (their video.token_file), "
                                          "sent when asking them for review video")
    video_timeout_s: float = Field(3.0, gt=0, le=60, description="a camera node that does not answer a clip "
                                   "request within this is reported offline")

    def video_token(self) -> str | None:
        return self.video_token_file.read_text().strip() if self.video_token_file else None

    def clinic_path(self, coordinator_database: Path) -> Path:
        return self.clinic_database or Path(coordinator_database).with_name("clinic.sqlite")


DEFAULT_CALIBRATION = Path("/var/lib/gaitrig/calibration.json")  # where `gaitrig calibrate solve` writes


class AnalysisSettings(Section):
    calibration: Path = Field(DEFAULT_CALIBRATION, description="rig calibration (`gaitrig calibrate solve` writes "
                              "it), read when the coordinator starts: reports then carry 3D joint angles and judge "
                              "the frontal findings from them; no file there: 2D reports")

    @field_validator("calibration")
    @classmethod
    def _json_file(cls, v: Path) -> Path:
        if str(v) in ("", ".") or v.suffix.lower() != ".json":
            raise ValueError(f"must be the .json file `gaitrig calibrate solve` writes (default {DEFAULT_CALIBRATION}), "
                             f"got {str(v)!r}")
        return v


class CoordinatorConfig(Section):
    mqtt: MqttSettings = MqttSettings()
    session: SessionSettings = SessionSettings()
    storage: StorageSettings = StorageSettings()
    web: WebSettings = WebSettings()
    analysis: AnalysisSettings = AnalysisSettings()


C = TypeVar("C", bound=BaseModel)


def _describe(e: ValidationError, source: str) -> str:
    lines = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{source}: {key}: {msg}")
    return "\n".join(lines)


def parse_config(model: type[C], data: dict, source: str = "<config>") -> C:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_describe(e, source)) from None


def read_toml(path: Path | str) -> dict:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def load_config(model: type[C], path: Path | str) -> C:
    """Read and validate a TOML file; every problem becomes a ConfigError naming file and key."""
    return parse_config(model, read_toml(path), str(path))


class CameraSettings(Section):
    backend: Literal["picamera2", "video", "simulated"] = "simulated"
    width: int = Field(1456, gt=0, description="px; the Global Shutter camera's full frame")
    height: int = Field(1088, gt=0)
    camera_num: int = Field(0, ge=0, description="picamera2: which camera")
    analogue_gain: float = Field(4.0, ge=1, description="picamera2: fixed gain (no auto exposure)")
    trigger_mode_file: Path = Field(Path("/sys/module/imx296/parameters/trigger_mode"),
                                    description="picamera2: must read 1 (external trigger) before the camera starts")
    video: Path | None = Field(None, description="video backend: the file to play, frame by frame")
    video_in_memory: bool = Field(False, description="video backend: decode the file once and hand out copies, "
                                  "costing the CPU what a Pi's camera does (~6.7 MB held per frame of the file)")
    trigger_line: Path | None = Field(None, description="simulated and video backends: the simulator's trigger-line file")
    miss_fraction: float = Field(0.0, ge=0, lt=1, description="simulated backend: share of pulses to miss")
    clock_offset_file: Path | None = Field(None, description="simulated and video backends: a file holding the "
                                           "seconds this node's wall clock is off by (fault tests step it)")


class ModelSettings(Section):
    models_dir: Path | None = Field(None, description="folder of the .tflite files (default: the fetch cache)")
    threads: int = Field(2, ge=1, le=16, description="TFLite interpreter threads")
    delegate: Path | None = Field(None, description="optional TFLite delegate library, e.g. an Edge TPU's")
    belt_roi: tuple[float, float, float, float] = Field(
        (0.0, 0.0, 1.0, 1.0), description="x0,y0,x1,y1 fractions of the image: where the patient's feet are")
    emulate_detector_ms: float = Field(0.0, ge=0, description="tests: slow each detector invoke to at least "
                                       "this (a stated Raspberry Pi 5 estimate is 40); 0: this CPU's speed")
    emulate_landmark_ms: float = Field(0.0, ge=0, description="tests: slow each landmark invoke to at least "
                                       "this (a stated Raspberry Pi 5 estimate is 25); 0: this CPU's speed")


class WalkerSettings(Section):
    """The simulated patient (simulated backend only); see docs/walker.md."""
    cadence_steps_per_min: float = Field(110.0, ge=40, le=200)
    belt_speed_m_s: float = Field(1.2, gt=0, le=3, description="the speed the patient walks at (set the belt to it)")
    stance_pct: float = Field(62.0, ge=50, le=85, description="stance, % of the gait cycle")
    stride_time_cv_pct: float = Field(2.0, ge=0, le=10, description="stride-to-stride variability of stride time")
    rearfoot_eversion_left_deg: float = Field(4.0, ge=-20, le=20, description="eversion (pronation) + in stance")
    rearfoot_eversion_right_deg: float = Field(4.0, ge=-20, le=20, description="eversion (pronation) + in stance")
    pelvic_obliquity_deg: float = Field(0.0, ge=-10, le=10, description="+ = left hip higher (right leg shorter)")
    noise_px: float = Field(0.0, ge=0, le=50, description="landmark noise, as a pose model's jitter")
    seed: int = Field(0, description="the walk's stride-to-stride variability and artefacts follow it")
    script: Path | None = Field(None, description="a TOML file whose [walker] table (these knobs) is read again "
                                "at each new trigger train: the demo's patient changes shoes between walks")

    def params(self) -> "WalkerParams":
        """The simulated walker these settings describe."""
        from rig.sim.walker import WalkerParams
        return WalkerParams(**self.model_dump(exclude={"seed", "script"}))


class VideoSettings(Section):
    """Review video kept on the node (docs/video.md)."""
    enabled: bool = Field(True, description="record each session's frames for review on the tablet")
    dir: Path | None = Field(None, description="where sessions' video is kept, one folder per view and session "
                             "(default: video/ in spool_dir)")
    max_mb: float = Field(20000.0, gt=0, description="at most this much video on this disk; the oldest sessions "
                          "go first")
    keep_days: float = Field(30.0, gt=0, description="a session's video is deleted this many days after recording")
    width_px: int = Field(728, ge=64, le=4096, description="pictures are scaled to at most this width (the "
                          "camera's 1456 px: half size; with picamera2's encoder any other size takes the lores "
                          "stream the optical flow reads at half size, and the flow then reads the main stream)")
    jpeg_quality: int = Field(80, ge=10, le=100)
    encoder: Literal["mjpeg", "opencv"] = Field("mjpeg", description="picamera2 backend: picamera2's MJPEG "
                                                "encoder on a lores stream (mjpeg) or OpenCV on this CPU")
    host: str = Field("0.0.0.0", description="the clip server's address (the coordinator asks it for clips)")
    port: int = Field(8091, ge=0, le=65535, description="the clip server's TCP port; 0, or this one taken: any "
                      "free one (the birth message says which)")
    advertise_host: str | None = Field(None, description="the address the coordinator reaches this node at "
                                       "(default: this node's address toward the broker)")
    token_file: Path | None = Field(None, description="a file holding a token the coordinator must send "
                                    "(Authorization: Bearer); none: anyone on the LAN may ask")


class NodeConfig(Section):
    mqtt: MqttSettings = MqttSettings()
    view: View
    facing: Literal["left", "right"] | None = Field(None, description="side views: the way the patient faces")
    camera: CameraSettings = CameraSettings()
    model: ModelSettings = ModelSettings()
    walker: WalkerSettings = WalkerSettings()
    video: VideoSettings = VideoSettings()
    backlog_max_mb: float = Field(20.0, gt=0, description="memory for frames waiting for inference, and "
                                  "for frames exposed before their train is known (a 1456x1088 frame is 4.75 MB: "
                                  "4 frames, one landmark run at 120 Hz); beyond it they wait on disk as crops")
    backlog_crops_max_mb: float = Field(12.0, ge=0, description="memory for frames waiting for inference "
                                        "beyond backlog_max_mb, as grayscale body crops (about 1 MB each at "
                                        "1080x1920): a node briefly behind catches up without the disk")
    crop_spool_max_mb: float = Field(4000.0, gt=0, description="disk for frames waiting for inference, as "
                                     "grayscale JPEG crops of the body; beyond it frames are dropped and counted")
    trigger_rate_hz: float = Field(120.0, gt=0, description="rate to pace for until a train reports its own")
    pace_margin: float = Field(0.75, gt=0, le=1, description="share of the trigger period the estimator may "
                               "plan to use (the rest is headroom)")
    preview_fps: float = Field(4.0, ge=0, le=30, description="landmarks on the live-preview topic per second "
                               "while recording; 0: none")
    max_keyframe_interval: int = Field(8, ge=1, le=30, description="at most this many frames per landmark run; "
                                       "a slower node spools crops to disk instead")
    end_grace_s: float = Field(1.0, gt=0, description="wait this long for the last frames after "
                               "the train stops, counted from the last frame the camera delivered")
    spool_dir: Path = Field(Path("/var/lib/gaitrig"), description="on-disk spool while the broker is unreachable")
    spool_max_mb: float = Field(200.0, gt=0, description="spool bound; beyond it frames are counted as lost")
    resend_window_s: float = Field(35.0, ge=0, description="after reconnecting, send again what was published in "
                                   "this window: more than the broker's autosave_interval (a crashed broker loses "
                                   "what it accepted since its last save)")
