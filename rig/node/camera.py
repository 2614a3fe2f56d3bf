"""Camera backends behind one interface: a frame is its host-time exposure instant and its
image. ``picamera2`` is the rig's camera; ``video`` plays real footage and ``simulated`` films
the simulated walker, both following the simulated trigger line: one frame per pulse sent."""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from rig.node.clock import WallClock, unix_minus_mono
from rig.sim.trigger_line import TriggerLine

log = logging.getLogger(__name__)


class CameraError(RuntimeError):
    """The camera cannot be opened or stopped delivering; the message says which and why."""


def camera_picture(frame: "CapturedFrame") -> "np.ndarray | None":
    """What review video shows of a real camera's frame: its image, for OpenCV to encode."""
    return frame.image


@dataclass(frozen=True)
class CapturedFrame:
    t: float  # exposure instant, host Unix s (sensor timestamp mapped to realtime)
    image: np.ndarray | None  # BGR; None from the simulated camera
    landmarks: np.ndarray | None = None  # simulated camera only: what the walker shows, (33, 4) px
    mono: float | None = None  # exposure instant on CLOCK_MONOTONIC, s: no wall-clock step moves it
    # the image in gray at half size, made by the camera's ISP (picamera2's lores Y plane):
    # the optical flow reads it instead of the BGR image (edge_models.pose.tracking.luma_of)
    luma: np.ndarray | None = None


def _on_node_clock(true_unix_t: float, clock: WallClock) -> tuple[float, float]:
    """A stand-in camera's pulse instant (true Unix time, from the trigger line) as a real
    camera on this node would stamp it: (wall time, monotonic time)."""
    mono = true_unix_t - unix_minus_mono()
    return mono + clock.wall_minus_mono(), mono


class Camera(Protocol):
    name: str
    width: int
    height: int
    gives_luma: bool  # frames come with their luma plane (CapturedFrame.luma)

    def open(self) -> None: ...
    def read(self, timeout_s: float) -> CapturedFrame | None: ...
    def close(self) -> None: ...


class SimulatedCamera:
    """Exposes one frame per pulse on the simulated trigger line (optionally missing some).
    Its "image" is the simulated walker's landmarks at that pulse, for the view it films."""

    name = "simulated"
    gives_luma = False

    def __init__(self, trigger_line: Path | None, scene: Callable[[float, int], np.ndarray | None],
                 width: int, height: int, miss_fraction: float = 0.0, seed: int = 0,
                 clock: WallClock | None = None, on_train: Callable[[], None] | None = None):
        """``on_train``: called before the first frame of each new trigger train (the
        simulated patient may walk differently from one walk to the next)."""
        self.trigger_line, self.scene, self.width, self.height = trigger_line, scene, width, height
        self.miss_fraction, self.clock, self.on_train = miss_fraction, clock or WallClock(), on_train
        self._rng = random.Random(seed)
        self._clock: TriggerLineClock | None = None
        self._train: int | None = None

    def open(self) -> None:
        if self.trigger_line is None:
            raise CameraError("simulated camera needs camera.trigger_line (the simulator's trigger-line file)")
        self._clock = TriggerLineClock(self.trigger_line)

    def read(self, timeout_s: float) -> CapturedFrame | None:
        deadline = time.monotonic() + timeout_s
        while (pulse := self._clock.next_pulse(max(0.0, deadline - time.monotonic()))) is not None:
            t, rate_hz, k = pulse
            if self.on_train and self._clock.train != self._train:
                self._train = self._clock.train
                self.on_train()
            if not (self.miss_fraction and self._rng.random() < self.miss_fraction):
                wall, mono = _on_node_clock(t, self.clock)
                return CapturedFrame(wall, None, self.scene(rate_hz, k), mono)
        return None

    def close(self) -> None:
        if self._clock:
            self._clock.close()


class TriggerLineClock:
    """Pulse instants from the simulated trigger line, one per pulse sent after it was
    opened, for stand-in cameras: a camera opened mid-train sees the pulses from then on."""

    def __init__(self, path: Path, poll_s: float = 0.002):
        try:
            self._line = TriggerLine(path)
        except OSError as e:
            raise CameraError(f"cannot open the trigger line {path}: {e}") from None
        self.poll_s = poll_s
        s = self._line.read()
        self._train, self._next = s.train, s.pulses

    @property
    def train(self) -> int:
        """The trigger train the last pulse belongs to."""
        return self._train

    def next_pulse(self, timeout_s: float) -> tuple[float, float, int] | None:
        """(pulse time, rate, index) of the next pulse sent, or None on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            s = self._line.read()
            if s.train != self._train:
                self._train, self._next = s.train, 0
            if s.pulses > self._next:
                k, self._next = self._next, self._next + 1
                return s.first_pulse_t + k / s.rate_hz, s.rate_hz, k
            if time.monotonic() >= deadline:
                return None
            time.sleep(self.poll_s)

    def close(self) -> None:
        self._line.close()


def _back_and_forth(k: int, n: int) -> int:
    """The picture shown ``k`` frames in when ``n`` pictures play forth and back
    (0, 1, ..., n-1, n-2, ..., 1, 0, 1, ...)."""
    if n < 2:
        return 0
    k %= 2 * n - 2
    return k if k < n else 2 * n - 2 - k


class VideoCamera:
    """Real footage as a camera: one decoded frame per pulse of the trigger line (or at the
    file's own rate without one), looping at the end of the file (or, held in memory,
    playing forth and back). Each frame comes with its luma plane, as picamera2's lores
    stream gives it (here computed: 1.3 ms a 1080x1920 frame, with the 4.6 ms decode work
    a Pi's ISP does)."""

    name = "video"
    gives_luma = True

    def __init__(self, path: Path | None, trigger_line: Path | None, clock: WallClock | None = None,
                 in_memory: bool = False):
        """``in_memory``: decode the file once at open and hand out a copy of each frame and
        its plane — what a Pi's camera costs the CPU (picamera2 copies a buffer the ISP
        filled): 2-5 ms a 1080x1920 frame in a node here (the fresh buffer's page faults
        included) instead of a ~6 ms decode, for ~6.7 MB per frame of the file held. The
        file then plays forth and back, so the person never jumps from its last frame to
        its first (no camera does; :meth:`after_loop` marks where the file-decoding
        stand-in does)."""
        self.path, self.trigger_line, self.clock = path, trigger_line, clock or WallClock()
        self.in_memory = in_memory
        self._decoded: list[tuple[np.ndarray, np.ndarray]] = []
        self.width = self.height = 0
        self._cap = None
        self._clock: TriggerLineClock | None = None
        self._t0 = 0.0
        self._n = 0
        self._served = 0  # frames handed out from memory

    def open(self) -> None:
        import cv2
        if self.path is None or not Path(self.path).is_file():
            raise CameraError(f"video backend: camera.video {self.path} is not a file")
        # one decoding thread: a frame-threaded decoder holds a picture per thread (~9 MB more
        # at 1080x1920), memory a Pi's camera, which stands here, does not spend
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
        ok, frame = self._cap.read()
        if not ok:
            raise CameraError(f"video backend: cannot decode {self.path}")
        self.height, self.width = frame.shape[:2]
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or 30.0
        if self.in_memory:
            self._decoded = [(f.image, f.luma) for f in (self._read_file(0.0, None)
                                                         for _ in range(self.frames_in(self.path)))]
        self._clock = TriggerLineClock(self.trigger_line) if self.trigger_line else None
        self._t0 = time.time()

    def _decode(self, t: float, mono: float | None) -> CapturedFrame:
        if not self._decoded:
            return self._read_file(t, mono)
        image, luma = self._decoded[_back_and_forth(self._served, len(self._decoded))]
        self._served += 1
        return CapturedFrame(t, image.copy(), mono=mono, luma=luma.copy())

    def _read_file(self, t: float, mono: float | None) -> CapturedFrame:
        import cv2

        from edge_models.pose.tracking import luma_of
        ok, frame = self._cap.read()
        if not ok:  # end of file: loop
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
            if not ok:
                raise CameraError(f"video backend: {self.path} stopped decoding")
        return CapturedFrame(t, frame, mono=mono, luma=luma_of(frame))

    def read(self, timeout_s: float) -> CapturedFrame | None:
        if self._clock is not None:
            pulse = self._clock.next_pulse(timeout_s)
            if pulse is None:
                return None
            return self._decode(*_on_node_clock(pulse[0], self.clock))
        t = self._t0 + self._n / self.fps
        if t - time.time() > timeout_s:
            time.sleep(timeout_s)
            return None
        time.sleep(max(0.0, t - time.time()))
        self._n += 1
        return self._decode(t, None)

    def close(self) -> None:
        self._decoded = []
        if self._cap is not None:
            self._cap.release()
        if self._clock is not None:
            self._clock.close()

    @staticmethod
    def frames_in(path: Path) -> int:
        """The file's frame count: trigger index i shows picture i modulo it."""
        import cv2
        cap = cv2.VideoCapture(str(path))
        try:
            return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()

    @staticmethod
    def after_loop(n_frames: int, clip_frames: int, within: int) -> np.ndarray:
        """Which trigger indices lie at most ``within`` frames after the footage loops: there
        the person jumps back in one frame, which no real camera shows."""
        return np.arange(n_frames) % clip_frames <= within


class Picamera2Camera:
    """The Global Shutter camera (IMX296) in external-trigger mode, through picamera2.

    The frame rate is the trigger pulse rate and exposure is the pulse width, so auto
    exposure is off. Each frame's time is its ``SensorTimestamp`` (CLOCK_MONOTONIC, ns)
    mapped to host Unix time. picamera2 needs libcamera from Raspberry Pi OS, so it is
    imported only here (``factory`` lets tests pass a stand-in with the same API).
    """

    name = "picamera2"

    def __init__(self, width: int, height: int, camera_num: int, analogue_gain: float,
                 trigger_mode_file: Path, factory=None, video_width_px: int = 728, encoder_api=None):
        self.width, self.height, self.camera_num = width, height, camera_num
        self.analogue_gain, self.trigger_mode_file, self.factory = analogue_gain, trigger_mode_file, factory
        self.video_width_px, self.encoder_api = video_width_px, encoder_api
        self._cam = None
        self._job = None
        self._recorder = None
        self._with_luma = False  # as opened: the lores stream is the luma plane
        self._luma_refused = False  # a lores buffer of the wrong shape was seen (logged once)
        self.clock = WallClock()

    def record_to(self, recorder) -> None:
        """Review video from picamera2's MJPEG encoder on a lores stream of the video's size:
        each JPEG goes to ``recorder.put_encoded`` with its sensor time (CLOCK_MONOTONIC s),
        and the recorder pairs it with the trigger index the node gave that frame."""
        self._recorder = recorder

    @property
    def luma_size(self) -> tuple[int, int]:
        return self.width // 2, self.height // 2

    @property
    def gives_luma(self) -> bool:
        """The lores stream (YUV420, made by the ISP) is the luma plane when it is half the
        main stream's size: always, unless review video wants its pictures another size
        (the encoder shares the one lores stream; 728 px wide, the default, is half the
        Global Shutter camera's 1456)."""
        w, h = self.luma_size
        fits = w % 2 == 0 and h % 2 == 0  # YUV420's chroma needs even sizes
        return fits and (self._recorder is None or tuple(self._recorder.picture_size()) == (w, h))

    def _check_trigger_mode(self) -> None:
        try:
            mode = Path(self.trigger_mode_file).read_text().strip()
        except OSError as e:
            raise CameraError(f"picamera2: cannot read {self.trigger_mode_file} ({e.strerror}): is this an "
                              "IMX296 Global Shutter camera?") from None
        if mode != "1":
            raise CameraError(f"picamera2: external trigger mode is off ({self.trigger_mode_file} reads {mode!r}); "
                              "start gaitrig-camera-trigger.service, which writes 1 there before the camera starts")

    def open(self) -> None:
        self._check_trigger_mode()
        factory = self.factory or _import_picamera2()
        try:
            cam = factory(self.camera_num)
            lores, self._with_luma = self._lores(), self.gives_luma
            config = cam.create_video_configuration(
                main={"size": (self.width, self.height), "format": "RGB888"}, lores=lores, buffer_count=6,
                queue=False, encode="lores" if lores else "main",
                controls={"AeEnable": False, "AwbEnable": False, "AnalogueGain": self.analogue_gain})
            cam.configure(config)
            cam.start()
            if self._recorder is not None:
                self._start_encoder(cam)
        except (RuntimeError, IndexError, OSError) as e:
            raise CameraError(f"picamera2: camera {self.camera_num} failed to open: {e}") from None
        self._cam = cam

    def _lores(self) -> dict | None:
        """The luma plane's stream, which the review video's encoder also takes (YUV420)."""
        if self.gives_luma:
            return {"size": self.luma_size, "format": "YUV420"}
        if self._recorder is None:
            return None
        w, h = self._recorder.picture_size()
        log.warning("picamera2: review video %dx%d takes the lores stream, so the optical flow reads the main "
                    "stream (slower); video.width_px = %d shares it", w, h, self.luma_size[0])
        return {"size": (w, h), "format": "YUV420"}

    def read(self, timeout_s: float) -> CapturedFrame | None:
        if self._job is None:  # one capture at a time; a timed-out one is waited on next call
            self._job = self._cam.capture_request(wait=False)
        try:
            request = self._cam.wait(self._job, timeout=timeout_s)
        except TimeoutError:
            return None
        self._job = None
        try:
            sensor_ns = request.get_metadata()["SensorTimestamp"]
            image = request.make_array("main")  # "RGB888" is B,G,R in memory: OpenCV's order
            luma = self._luma_plane(request) if self._with_luma else None
        finally:
            request.release()
        return CapturedFrame(sensor_ns / 1e9 + self.clock.wall_minus_mono(), image, mono=sensor_ns / 1e9, luma=luma)

    def _luma_plane(self, request) -> np.ndarray | None:
        """The lores stream's Y plane: picamera2 gives YUV420 as (h * 3 / 2, stride) rows, Y
        first, each row padded to the stride. Another shape (a driver or picamera2 change)
        is logged once and the flow reads the main stream instead."""
        w, h = self.luma_size
        yuv = request.make_array("lores")
        if yuv.dtype != np.uint8 or yuv.ndim != 2 or yuv.shape[0] < h * 3 // 2 or yuv.shape[1] < w:
            if not self._luma_refused:
                log.warning("picamera2: lores stream came as %s %s, not YUV420 %dx%d rows: the optical flow "
                            "reads the main stream", yuv.dtype, yuv.shape, w, h * 3 // 2)
            self._luma_refused = True
            return None
        return np.ascontiguousarray(yuv[:h, :w])

    def _start_encoder(self, cam) -> None:
        encoder_class, output_class = self.encoder_api or _import_encoder_api()
        encoder = encoder_class()
        cam.start_encoder(encoder, _indexed_output(output_class, encoder, self._recorder.put_encoded), name="lores")

    def close(self) -> None:
        if self._cam is not None:
            if self._recorder is not None:
                self._cam.stop_encoder()
            self._cam.stop()
            self._cam.close()
            self._cam = None


def _indexed_output(output_class, encoder, sink: Callable[[float, bytes], None]):
    """A picamera2 ``Output`` handing each encoded frame to ``sink`` with its sensor time.
    picamera2 passes ``timestamp`` in µs since the encoder's first frame, whose own sensor
    time (µs) it keeps in ``encoder.firsttimestamp``."""

    class IndexedOutput(output_class):
        def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
            if timestamp is not None and encoder.firsttimestamp is not None:
                sink((encoder.firsttimestamp + timestamp) / 1e6, bytes(frame))

    return IndexedOutput()


def _import_encoder_api():
    try:
        from picamera2.encoders import MJPEGEncoder
        from picamera2.outputs import Output
    except ImportError:
        raise CameraError("picamera2's encoders are not installed (video.encoder = \"mjpeg\"); install "
                          "python3-picamera2, or set video.encoder = \"opencv\"") from None
    return MJPEGEncoder, Output


def _import_picamera2():
    try:
        from picamera2 import Picamera2
    except ImportError:
        raise CameraError("picamera2 is not installed: on Raspberry Pi OS, `apt install python3-picamera2` "
                          "and create the venv with --system-site-packages") from None
    return Picamera2
