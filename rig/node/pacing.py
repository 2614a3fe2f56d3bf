"""How a node keeps up with the trigger: it times its own models and chooses between the
landmark model on every frame and the model on keyframes with optical flow in between.

Nothing published measures BlazePose on a Raspberry Pi 5, so the node does not guess: at
start it runs each model a few times on its own CPU (slowed to a stated estimate when
``model.emulate_*_ms`` is set), and while it runs it watches the interpreter's recent invoke
time — a throttling CPU shows up there first — and chooses again when that drifts.

Per frame, with landmark time L, flow time F (grayscale body region + Lucas–Kanade), the
node's own per-frame work O (reading/decoding the camera frame, publishing; measured while
it runs, not at the self-test) and a keyframe every n frames, the cost is L/n + F + O
(n = 1: L + O). On one core O is a third of a 60 Hz period: a model without it chose an
interval the node could not keep. The node takes the smallest n
whose cost fits ``margin`` of the trigger period; past ``max_interval`` (accuracy falls with
n) it cannot keep up, says so ("behind"), and the disk spool of crops carries the excess.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np

from edge_models.pose.tracking import GAIT_POINTS, LucasKanadeTracker, Region, luma_of

Mode = Literal["every_frame", "keyframes", "behind"]
DEFAULT_MARGIN = 0.75  # share of the trigger period the estimator may use
DEFAULT_MAX_INTERVAL = 8
REPLAN_RATIO = 1.25  # the recent invoke time left [1/r, r] x the tested one: choose again
REPLAN_OVERHEAD_MS = 0.5  # the per-frame overhead moved by more than this (and the ratio): choose again
OVERHEAD_EWMA_ALPHA = 0.05  # ~20 frames' memory


@dataclass(frozen=True)
class SpeedTest:
    """Median ms per run on this CPU (the node's self-test)."""

    detector_ms: float
    landmark_ms: float
    track_ms: float  # one frame of flow: grayscale body region + forward-backward LK
    overhead_ms: float = 0.0  # the node's other work per frame (camera, publishing), measured live

    def scaled(self, factor: float) -> "SpeedTest":
        """The same CPU running ``factor`` times slower (throttled) or faster (cooled); the
        overhead is measured at the current speed already."""
        return SpeedTest(self.detector_ms * factor, self.landmark_ms * factor, self.track_ms * factor,
                         self.overhead_ms)


@dataclass(frozen=True)
class Pace:
    mode: Mode
    interval: int  # a landmark run every this many frames
    rate_hz: float
    budget_ms: float  # the trigger period
    cost_ms: float  # expected estimator time per frame
    speed: SpeedTest

    @property
    def headroom_pct(self) -> float:
        """Share of the trigger period left over; negative: falling behind."""
        return 100.0 * (1.0 - self.cost_ms / self.budget_ms)

    def figures(self) -> dict[str, float | int | str]:
        """For the birth message, health reports and ``gaitrig node --benchmark``."""
        speed = {k: round(v, 2) for k, v in asdict(self.speed).items()}
        return {"pace_mode": self.mode, "keyframe_interval": self.interval, "trigger_rate_hz": self.rate_hz,
                "frame_budget_ms": round(self.budget_ms, 2), "cost_ms_per_frame": round(self.cost_ms, 2),
                "headroom_pct": round(self.headroom_pct, 1), **speed}


def choose_pace(speed: SpeedTest, rate_hz: float, margin: float = DEFAULT_MARGIN,
                max_interval: int = DEFAULT_MAX_INTERVAL) -> Pace:
    """The cheapest way to keep up with ``rate_hz`` with ``margin`` of the period (pure)."""
    if rate_hz <= 0 or not 0 < margin <= 1 or max_interval < 1:
        raise ValueError(f"need rate_hz > 0, 0 < margin <= 1, max_interval >= 1; got {rate_hz}, {margin}, "
                         f"{max_interval}")
    budget_ms = 1000.0 / rate_hz
    usable_ms = margin * budget_ms
    overhead_ms = speed.overhead_ms
    if speed.landmark_ms + overhead_ms <= usable_ms:
        return Pace("every_frame", 1, rate_hz, budget_ms, speed.landmark_ms + overhead_ms, speed)
    spare_ms = usable_ms - speed.track_ms - overhead_ms
    n = math.ceil(speed.landmark_ms / spare_ms) if spare_ms > 0 else max_interval + 1
    mode: Mode = "keyframes" if n <= max_interval else "behind"
    n = max(2, min(n, max_interval))
    return Pace(mode, n, rate_hz, budget_ms, speed.landmark_ms / n + speed.track_ms + overhead_ms, speed)


class Pacer:
    """Holds the current choice and makes it again when the rate, the CPU's speed or the
    node's per-frame overhead changes.

    ``observe`` takes the landmark interpreter's recent invoke time; ``invoke_ms_at_test`` is
    what it was during the self-test, so the ratio is the CPU's slow-down (or speed-up) since;
    and the overhead the node measured (:class:`OverheadMeter`).
    """

    def __init__(self, speed: SpeedTest, invoke_ms_at_test: float, rate_hz: float,
                 margin: float = DEFAULT_MARGIN, max_interval: int = DEFAULT_MAX_INTERVAL,
                 replan_ratio: float = REPLAN_RATIO):
        self.tested, self.invoke_ms_at_test = speed, invoke_ms_at_test
        self.margin, self.max_interval, self.replan_ratio = margin, max_interval, replan_ratio
        self.replans = 0
        self._factor = 1.0
        self._overhead_ms = speed.overhead_ms
        self.pace = choose_pace(speed, rate_hz, margin, max_interval)

    def _speed(self) -> SpeedTest:
        return replace(self.tested.scaled(self._factor), overhead_ms=self._overhead_ms)

    def set_rate(self, rate_hz: float) -> Pace:
        if rate_hz > 0 and rate_hz != self.pace.rate_hz:
            self.pace = choose_pace(self._speed(), rate_hz, self.margin, self.max_interval)
        return self.pace

    def observe(self, invoke_ms: float | None, overhead_ms: float | None = None) -> Pace | None:
        """The new pace if the CPU's speed moved past the ratio, or the overhead by more than
        ``REPLAN_OVERHEAD_MS`` and the ratio, since the last choice; else None."""
        factor, overhead = self._factor, self._overhead_ms
        if invoke_ms and self.invoke_ms_at_test:
            ratio = invoke_ms / self.invoke_ms_at_test
            if not 1 / self.replan_ratio <= ratio / self._factor <= self.replan_ratio:
                factor = ratio
        if overhead_ms is not None and abs(overhead_ms - overhead) > max(
                REPLAN_OVERHEAD_MS, (self.replan_ratio - 1) * overhead):
            overhead = overhead_ms
        if (factor, overhead) == (self._factor, self._overhead_ms):
            return None
        self._factor, self._overhead_ms, self.replans = factor, overhead, self.replans + 1
        self.pace = choose_pace(self._speed(), self.pace.rate_hz, self.margin, self.max_interval)
        return self.pace


class OverheadMeter:
    """The node's per-frame CPU outside the estimator, in ms: one running mean per source
    (the capture thread's work per frame, the inference thread's work around the stage),
    summed. Thread CPU time (``time.thread_time``), so waiting is not counted and another
    thread's work (review video, at low priority) is not either."""

    def __init__(self, alpha: float = OVERHEAD_EWMA_ALPHA):
        self.alpha = alpha
        self._ms: dict[str, float] = {}

    def add(self, source: str, ms: float) -> None:
        old = self._ms.get(source)
        self._ms[source] = ms if old is None else old + self.alpha * (ms - old)

    @property
    def ms(self) -> float:
        return sum(self._ms.values())

    def figures(self) -> dict[str, float]:
        return {f"overhead_ms_{k}": round(v, 2) for k, v in self._ms.items()}


def time_tracking(width: int, height: int, luma: bool, runs: int = 5, seed: int = 0) -> float:
    """Median ms of one frame of flow for a body filling 80 % of the frame's height, on a
    textured ``width``×``height`` image moving 2 px a frame; read from the frame's luma
    plane if the camera gives one (``luma``), else from its BGR image."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height + 2 * runs + 2, width + 2 * runs + 2, 3), np.uint8)
    frames = [texture[2 * k:2 * k + height, 2 * k:2 * k + width] for k in range(runs + 1)]  # views
    ys = np.linspace(0.1, 0.9, len(GAIT_POINTS)) * height
    xy = np.stack([np.full_like(ys, width / 2), ys], axis=1)
    region = Region.around(xy, 0.35, width, height)
    tracker = LucasKanadeTracker()
    lumas = [luma_of(f) if luma else None for f in frames]  # the camera's work, not timed
    tracker.anchor(region.gray(frames[0], lumas[0]), region.to_work(xy))
    times = []
    for frame, plane in zip(frames[1:], lumas[1:]):
        t0 = time.perf_counter()
        tracker.step(region.gray(frame, plane))
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))
