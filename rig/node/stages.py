"""What turns a node's frames into published landmarks: frames in, estimates out (maybe later).

- :class:`ImmediateStage`: one estimate per frame, at once (the simulated walker).
- :class:`KeyframeStage`: the pose pipeline on keyframes and optical flow between, at the
  interval its :class:`Pacer` chooses; holds at most one interval of frames.
"""
from __future__ import annotations

import logging
from typing import Callable, Protocol

import numpy as np

from edge_models.pose.keyframes import Estimate, KeyframeEstimator
from edge_models.pose.tracking import Region
from rig.node.camera import CapturedFrame
from rig.node.pacing import Pace, Pacer

log = logging.getLogger(__name__)
OBSERVE_EVERY = 30  # frames between looks at the interpreter's recent speed and the node's overhead


class FrameStage(Protocol):
    region: Region | None  # where the body was last seen (for crops), None: anywhere
    overhead_ms: float  # set by the daemon: its measured per-frame work outside the stage, for pacing

    def push(self, index: int, frame: CapturedFrame) -> list[Estimate]: ...
    def flush(self) -> list[Estimate]: ...
    def restart(self, skipped: int) -> list[Estimate]: ...
    def set_rate(self, rate_hz: float) -> None: ...
    def figures(self) -> dict: ...


class ImmediateStage:
    region = None
    overhead_ms = 0.0  # nothing to pace

    def __init__(self, estimate: Callable[[CapturedFrame], "np.ndarray | None"]):
        self.estimate = estimate

    def push(self, index: int, frame: CapturedFrame) -> list[Estimate]:
        return [Estimate(index, frame.t, self.estimate(frame))]

    def flush(self) -> list[Estimate]:
        return []

    def restart(self, skipped: int) -> list[Estimate]:
        return []

    def set_rate(self, rate_hz: float) -> None:
        pass

    def figures(self) -> dict:
        return {}


class KeyframeStage:
    """``pipeline`` is a PosePipeline (``process`` and ``landmark_interpreter.ewma_ms``)."""

    def __init__(self, pipeline, pacer: Pacer):
        self.pipeline, self.pacer = pipeline, pacer
        self.estimator = KeyframeEstimator.on(pipeline, pacer.pace.interval)
        self._frames = 0
        self.overhead_ms = 0.0  # the node's measured per-frame work outside this stage (pacing.OverheadMeter)

    @property
    def region(self) -> Region | None:
        return self.estimator.region

    def push(self, index: int, frame: CapturedFrame) -> list[Estimate]:
        self._frames += 1
        if self._frames % OBSERVE_EVERY == 0 and (pace := self.pacer.observe(
                self.pipeline.landmark_interpreter.ewma_ms, self.overhead_ms)) is not None:
            self._apply(pace, f"the CPU's speed or the node's overhead ({self.overhead_ms:.1f} ms a frame) changed")
        return self.estimator.push(index, frame.t, frame.image, frame.luma)

    def flush(self) -> list[Estimate]:
        """End of a session: release held frames and forget the track."""
        out = self.estimator.reset()
        self.pipeline.reset()
        return out

    def restart(self, skipped: int) -> list[Estimate]:
        """A gap in the frames (a stretch that waited on disk, a missed trigger) of
        ``skipped`` frames (negative: back in time): release the held frames, the last one a
        keyframe, and anchor afresh on the next frame — flow never bridges the gap. Forward
        (live frames after a stretch went to disk) the pose pipeline keeps its crop and its
        patient, whose gate widens for the frames skipped (the patient moved meanwhile): a
        stale crop fails its checks and the detector runs. Back in time (a stretch finished
        after later frames) both are from the future, where the patient's predicted place
        would refuse them: the pipeline starts afresh."""
        out = self.estimator.reset()
        if skipped < 0:
            self.pipeline.reset()
        else:
            self.pipeline.skipped(skipped)
        return out

    def set_rate(self, rate_hz: float) -> None:
        if rate_hz != self.pacer.pace.rate_hz:
            self._apply(self.pacer.set_rate(rate_hz), f"trigger rate {rate_hz:g} Hz")

    def _apply(self, pace: Pace, why: str) -> None:
        self.estimator.interval = pace.interval
        log.info("pace: %s, landmark model every %d frame(s), headroom %.0f %% (%s)",
                 pace.mode, pace.interval, pace.headroom_pct, why)

    def figures(self) -> dict:
        s = self.estimator.stats
        recent = self.pipeline.landmark_interpreter.ewma_ms
        return {**self.pacer.pace.figures(), "pace_replans": self.pacer.replans,
                "landmark_invoke_ms_recent": None if recent is None else round(recent, 2),
                "frames_inferred": s.inferred, "frames_tracked": s.tracked, "points_interpolated": s.points_lost,
                # keyframes given up as "patient not visible" rather than fitted to someone else
                "patient_not_visible": self.pipeline.stats.patient_not_visible}
