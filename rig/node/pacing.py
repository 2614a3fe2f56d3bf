"""How a node keeps up with the trigger: it times its own models and chooses between the
landmark model on every frame and the model on keyframes with optical flow in between.

Nothing published measures BlazePose on a Raspberry Pi 5, so the node does not guess: at
start it runs each model a few times on its own CPU (slowed to a stated estimate when
``model.emulate_*_ms`` is set), and while it runs it watches the interpreter's recent invoke
time — a throttling CPU shows up there first — and chooses again when that drifts.

Per frame, with landmark time L, flow time F (grayscale body region + Lucas–Kanade) and a
keyframe every n frames, the cost is L/n + F (n = 1: just L). The node takes the smallest n
whose cost fits ``margin`` of the trigger period; past ``max_interval`` (accuracy falls with
n) it cannot keep up, says so ("behind"), and the disk spool of crops carries the excess.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from edge_models.pose.tracking import GAIT_POINTS, LucasKanadeTracker, Region

Mode = Literal["every_frame", "keyframes", "behind"]
DEFAULT_MARGIN = 0.75  # share of the trigger period the estimator may use
DEFAULT_MAX_INTERVAL = 8
REPLAN_RATIO = 1.25  # the recent invoke time left [1/r, r] x the tested one: choose again


@dataclass(frozen=True)
class SpeedTest:
    """Median ms per run on this CPU (the node's self-test)."""

    detector_ms: float
    landmark_ms: float
    track_ms: float  # one frame of flow: grayscale body region + forward-backward LK

    def scaled(self, factor: float) -> "SpeedTest":
        """The same CPU running ``factor`` times slower (throttled) or faster (cooled)."""
        return SpeedTest(self.detector_ms * factor, self.landmark_ms * factor, self.track_ms * factor)


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
    if speed.landmark_ms <= usable_ms:
        return Pace("every_frame", 1, rate_hz, budget_ms, speed.landmark_ms, speed)
    spare_ms = usable_ms - speed.track_ms
    n = math.ceil(speed.landmark_ms / spare_ms) if spare_ms > 0 else max_interval + 1
    mode: Mode = "keyframes" if n <= max_interval else "behind"
    n = max(2, min(n, max_interval))
    return Pace(mode, n, rate_hz, budget_ms, speed.landmark_ms / n + speed.track_ms, speed)


class Pacer:
    """Holds the current choice and makes it again when the rate or the CPU's speed changes.

    ``observe`` takes the landmark interpreter's recent invoke time; ``invoke_ms_at_test`` is
    what it was during the self-test, so the ratio is the CPU's slow-down (or speed-up) since.
    """

    def __init__(self, speed: SpeedTest, invoke_ms_at_test: float, rate_hz: float,
                 margin: float = DEFAULT_MARGIN, max_interval: int = DEFAULT_MAX_INTERVAL,
                 replan_ratio: float = REPLAN_RATIO):
        self.tested, self.invoke_ms_at_test = speed, invoke_ms_at_test
        self.margin, self.max_interval, self.replan_ratio = margin, max_interval, replan_ratio
        self.replans = 0
        self._factor = 1.0
        self.pace = choose_pace(speed, rate_hz, margin, max_interval)

    def set_rate(self, rate_hz: float) -> Pace:
        if rate_hz > 0 and rate_hz != self.pace.rate_hz:
            self.pace = choose_pace(self.tested.scaled(self._factor), rate_hz, self.margin, self.max_interval)
        return self.pace

    def observe(self, invoke_ms: float | None) -> Pace | None:
        """The new pace if the CPU's speed moved past the ratio since the last choice, else None."""
        if not invoke_ms or not self.invoke_ms_at_test:
            return None
        factor = invoke_ms / self.invoke_ms_at_test
        if 1 / self.replan_ratio <= factor / self._factor <= self.replan_ratio:
            return None
        self._factor, self.replans = factor, self.replans + 1
        self.pace = choose_pace(self.tested.scaled(factor), self.pace.rate_hz, self.margin, self.max_interval)
        return self.pace


def time_tracking(width: int, height: int, runs: int = 5, seed: int = 0) -> float:
    """Median ms of one frame of flow for a body filling 80 % of the frame's height, on a
    textured ``width``×``height`` image moving 2 px a frame."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height + 2 * runs + 2, width + 2 * runs + 2, 3), np.uint8)
    frames = [texture[2 * k:2 * k + height, 2 * k:2 * k + width] for k in range(runs + 1)]  # views
    ys = np.linspace(0.1, 0.9, len(GAIT_POINTS)) * height
    xy = np.stack([np.full_like(ys, width / 2), ys], axis=1)
    region = Region.around(xy, 0.35, width, height)
    tracker = LucasKanadeTracker()
    tracker.anchor(region.gray(frames[0]), region.to_work(xy))
    times = []
    for frame in frames[1:]:
        t0 = time.perf_counter()
        tracker.step(region.gray(frame))
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))
