"""A stand-in with picamera2's own API (Picamera2, Job, CompletedRequest, and the encoder
path: MJPEGEncoder, Output, start_encoder) for the parts our backend uses, since picamera2
needs libcamera and a Raspberry Pi camera.

As in picamera2, a running encoder is fed every frame the sensor delivers (whether or not
it is captured), and hands its output ``outputframe(frame, keyframe, timestamp)`` with
``timestamp`` in µs since its first frame, whose sensor time it keeps in ``firsttimestamp``.

Frames arrive as an externally triggered camera delivers them: one per pulse of a
train, at the pulse's CLOCK_MONOTONIC instant, with ``SensorTimestamp`` in ns; pulses in
``skip`` produce no frame (a missed trigger). Requests must be released, as with libcamera.
"""
from __future__ import annotations

import time

import numpy as np


class CompletedRequest:
    def __init__(self, cam: "Picamera2", sensor_ns: int):
        self._cam, self._sensor_ns = cam, sensor_ns
        self.released = False

    def get_metadata(self) -> dict:
        return {"SensorTimestamp": self._sensor_ns, "ExposureTime": 1000, "FrameDuration": 16667,
                "AnalogueGain": self._cam.controls.get("AnalogueGain", 1.0)}

    def make_array(self, name: str) -> np.ndarray:
        """As picamera2 shapes a stream's buffer: RGB888 (h, w, 3); YUV420 (h * 3 / 2, stride)
        rows, Y then U then V, each row padded to a stride of 64 bytes. The Y plane is the
        grey level of the frame's sensor time (:func:`grey_level`), its padding 255."""
        stream = self._cam.config[name]
        w, h = stream["size"]
        if stream.get("format") == "YUV420":
            yuv = np.full((h * 3 // 2, -(-w // 64) * 64), 255, np.uint8)
            yuv[:h, :w] = grey_level(self._sensor_ns)
            yuv[h:, :w] = 128
            return yuv
        return np.zeros((h, w, 3), np.uint8)

    def release(self) -> None:
        self.released = True
        self._cam.released += 1


class Job:
    def __init__(self, cam: "Picamera2"):
        self._cam = cam

    def get_result(self, timeout=None) -> CompletedRequest:
        return self._cam._next_request(timeout)


class Picamera2:
    """``schedule_ns``: CLOCK_MONOTONIC times of the frames the sensor will deliver."""

    cameras = 1
    schedule_ns: list[int] = []
    instances: list["Picamera2"] = []

    def __init__(self, camera_num: int = 0):
        if camera_num >= self.cameras:
            raise IndexError("list index out of range")  # what picamera2 raises with no such camera
        self.camera_num, self.config, self.controls = camera_num, None, {}
        self.started = False
        self.released = 0
        self.encoder: MJPEGEncoder | None = None
        self._pending = list(self.schedule_ns)
        Picamera2.instances.append(self)

    def create_video_configuration(self, main=None, lores=None, raw=None, transform=None, colour_space=None,
                                   buffer_count=6, controls=None, display="main", encode="main", queue=True,
                                   sensor=None, use_case="video"):
        return {"main": dict(main or {}), "lores": dict(lores) if lores else None, "buffer_count": buffer_count,
                "controls": dict(controls or {}), "queue": queue, "use_case": use_case, "encode": encode}

    def configure(self, config) -> None:
        self.config = config
        self.controls = config["controls"]

    def start(self) -> None:
        if self.config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.started = False

    def start_encoder(self, encoder=None, output=None, pts=None, quality=None, name=None) -> None:
        if not self.started:
            raise RuntimeError("Camera must be started before the encoder")
        if output is not None:
            encoder.output = output
        encoder.name = name or self.config["encode"]
        if self.config.get(encoder.name) is None:
            raise RuntimeError(f"Encode stream {encoder.name} is not configured")
        encoder.size = tuple(self.config[encoder.name]["size"])
        encoder.start()
        self.encoder = encoder

    def stop_encoder(self) -> None:
        if self.encoder is not None:
            self.encoder.stop()
            self.encoder = None

    def capture_request(self, wait=None, flush=None):
        job = Job(self)
        return job if wait is False else job.get_result()

    def wait(self, job: Job, timeout=None) -> CompletedRequest:
        return job.get_result(timeout)

    def _next_request(self, timeout) -> CompletedRequest:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._pending:
            if timeout is not None:
                time.sleep(timeout)
            raise TimeoutError("no trigger pulse")
        due_s = self._pending[0] / 1e9
        if deadline is not None and due_s > deadline:
            time.sleep(max(0.0, deadline - time.monotonic()))
            raise TimeoutError("no trigger pulse")
        time.sleep(max(0.0, due_s - time.monotonic()))
        sensor_ns = self._pending.pop(0)
        if self.encoder is not None:
            self.encoder.encode_frame(sensor_ns)
        return CompletedRequest(self, sensor_ns)


class Output:
    def __init__(self, pts=None):
        self.recording = False
        self.ptsoutput = pts

    def start(self):
        self.recording = True

    def stop(self):
        self.recording = False

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        pass


class MJPEGEncoder:
    """JPEGs of a flat frame of the stream's size whose grey level tells which sensor frame it
    is (:func:`grey_level`), so a test can check each picture went to the right index."""

    def __init__(self, bitrate=None):
        self._output: list[Output] = []
        self.firsttimestamp = None
        self.name = None
        self.size = (0, 0)
        self.running = False

    @property
    def output(self):
        return self._output[0] if len(self._output) == 1 else self._output

    @output.setter
    def output(self, value):
        outputs = value if isinstance(value, list) else [value]
        if not all(isinstance(o, Output) for o in outputs):
            raise RuntimeError("Must pass Output")
        self._output = outputs

    def start(self, quality=None):
        if self.running:
            raise RuntimeError("Encoder already running")
        self.running = True
        for o in self._output:
            o.start()

    def stop(self):
        if not self.running:
            raise RuntimeError("Encoder already stopped")
        self.running = False
        for o in self._output:
            o.stop()

    def encode_frame(self, sensor_ns: int) -> None:
        import cv2
        ts = int(sensor_ns / 1000)
        if self.firsttimestamp is None:
            self.firsttimestamp = ts
        w, h = self.size
        ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), grey_level(sensor_ns), np.uint8))
        jpeg = buf.tobytes()
        for o in self._output:
            o.outputframe(jpeg, True, ts - self.firsttimestamp)


def grey_level(sensor_ns: int) -> int:
    """The stand-in encoder's picture of the frame exposed at ``sensor_ns``: 16 distinct greys."""
    return 24 + 13 * ((sensor_ns // 1_000_000) % 16)
