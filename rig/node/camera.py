"""Camera backends behind one interface: a frame is its host-time exposure instant and its
image. ``picamera2`` and ``video`` backends arrive with the camera-node work; ``simulated``
follows the simulated trigger line, so it produces exactly one frame per pulse sent."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from rig.sim.trigger_line import TriggerLine


class CameraError(RuntimeError):
    """The camera cannot be opened or stopped delivering; the message says which and why."""


@dataclass(frozen=True)
class CapturedFrame:
    t: float  # exposure instant, host Unix s (sensor timestamp mapped to realtime)
    image: np.ndarray | None  # BGR; None from the simulated camera
    landmarks: np.ndarray | None = None  # simulated camera only: what the walker shows, (33, 4) px


class Camera(Protocol):
    name: str
    width: int
    height: int

    def open(self) -> None: ...
    def read(self, timeout_s: float) -> CapturedFrame | None: ...
    def close(self) -> None: ...


class SimulatedCamera:
    """Exposes one frame per pulse on the simulated trigger line (optionally missing some).
    Its "image" is the simulated walker's landmarks at that pulse, for the view it films."""

    name = "simulated"

    def __init__(self, trigger_line: Path | None, scene: Callable[[float, int], np.ndarray | None],
                 width: int, height: int, miss_fraction: float = 0.0, seed: int = 0, poll_s: float = 0.002):
        self.trigger_line_path, self.scene, self.width, self.height = trigger_line, scene, width, height
        self.miss_fraction, self.poll_s = miss_fraction, poll_s
        self._rng = random.Random(seed)
        self._line: TriggerLine | None = None
        self._train, self._next = 0, 0

    def open(self) -> None:
        if self.trigger_line_path is None:
            raise CameraError("simulated camera needs camera.trigger_line (the simulator's trigger-line file)")
        try:
            self._line = TriggerLine(self.trigger_line_path)
        except OSError as e:
            raise CameraError(f"simulated camera: cannot open trigger line {self.trigger_line_path}: {e}") from None
        self._train = self._line.read().train  # a train already running before we opened is not ours

    def read(self, timeout_s: float) -> CapturedFrame | None:
        deadline = time.monotonic() + timeout_s
        while True:
            s = self._line.read()
            if s.train != self._train:
                self._train, self._next = s.train, 0
            if s.pulses > self._next:
                k = self._next
                self._next += 1
                if self.miss_fraction and self._rng.random() < self.miss_fraction:
                    continue
                return CapturedFrame(s.first_pulse_t + k / s.rate_hz, None, self.scene(s.rate_hz, k))
            if time.monotonic() >= deadline:
                return None
            time.sleep(self.poll_s)

    def close(self) -> None:
        if self._line:
            self._line.close()
