"""The camera-node daemon: capture never blocks, inference runs on its own thread behind
a bounded buffer, every frame is labelled with its trigger index and published.

Session control comes over MQTT: the retained session state says which session is
recording; the retained trigger state says when the train started (pulse 0) and, once
disarmed, how many pulses were sent — the node then finishes its backlog and reports
its end-of-session count.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import NodeEnd, NodeInfo, SessionState, TriggerState, decode
from rig.config import NodeConfig
from rig.node.camera import Camera, CapturedFrame
from rig.node.publisher import KeypointPublisher
from rig.node.spool import Spool
from rig.node.trigger import TriggerIndexer

log = logging.getLogger(__name__)
Estimator = Callable[[CapturedFrame, int], "np.ndarray | None"]


@dataclass
class Train:
    session_id: int
    indexer: TriggerIndexer
    pulses_sent: int | None = None  # known once the train is disarmed
    ended_at: float | None = None
    dropped: int = 0
    published: int = 0


class NodeDaemon:
    def __init__(self, config: NodeConfig, camera: Camera, estimator: Estimator, model_name: str,
                 simulated: bool = False):
        self.config, self.camera, self.estimator = config, camera, estimator
        self.model_name, self.simulated = model_name, simulated
        self.bus = BusClient(config.mqtt, f"node-{config.view}", simulated=simulated)
        spool = Spool(config.spool_dir / f"spool-{config.view}.sqlite", int(config.spool_max_mb * 1e6))
        self.publisher = KeypointPublisher(self.bus, config.view, simulated, spool)
        self.frames: queue.Queue = queue.Queue(maxsize=config.queue_frames)
        self.lock = threading.Lock()
        self.recording_session: int | None = None
        self.train: Train | None = None
        self.bus.on(topics.SESSION_STATE, self._on_session)
        self.bus.on(topics.TREADMILL_TRIGGER, self._on_trigger)

    # -- control over MQTT --------------------------------------------------------------------
    def _on_session(self, msg) -> None:
        state = decode(SessionState, msg.payload)
        with self.lock:
            self.recording_session = state.session_id if state.state == "recording" else None

    def _on_trigger(self, msg) -> None:
        trig = decode(TriggerState, msg.payload)
        with self.lock:
            t = self.train
            if trig.armed and trig.first_pulse_t is not None and self.recording_session is not None:
                if t is None or t.indexer.first_pulse_t != trig.first_pulse_t:
                    self._start_train(self.recording_session, trig)
            elif not trig.armed and t is not None and t.pulses_sent is None:
                t.pulses_sent, t.ended_at = trig.pulses_sent, time.monotonic()

    def _start_train(self, session_id: int, trig: TriggerState) -> None:
        log.info("session %d: train armed at %.1f Hz", session_id, trig.rate_hz)
        self.train = Train(session_id, TriggerIndexer(trig.first_pulse_t, trig.rate_hz))

    # -- threads -------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.camera.open()
        self.bus.start()
        self.bus.send(topics.NODE_INFO, NodeInfo(
            view=self.config.view, width=self.camera.width, height=self.camera.height,
            facing=self.config.facing, camera=self.camera.name, model=self.model_name,
            simulated=self.simulated), view=self.config.view)
        workers = [threading.Thread(target=self._infer_loop, args=(stop,), name="inference", daemon=True),
                   threading.Thread(target=self.publisher.replay, args=(stop,), name="replay", daemon=True)]
        for w in workers:
            w.start()
        try:
            self._capture_loop(stop)
        finally:
            for w in workers:
                w.join(5)
            self.publisher.spool.close()
            self.camera.close()
            self.bus.close()

    def _capture_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            frame = self.camera.read(0.1)
            if frame is None:
                continue
            with self.lock:
                t = self.train
                if t is None:
                    continue
                index = t.indexer.index(frame.t)
                if index is None or (t.pulses_sent is not None and index >= t.pulses_sent):
                    continue
                try:
                    self.frames.put_nowait((t.session_id, index, frame))
                except queue.Full:
                    t.dropped += 1

    def _infer_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                session_id, index, frame = self.frames.get(timeout=0.05)
            except queue.Empty:
                self._maybe_end()
                continue
            lm = self.estimator(frame, index)
            sent = self.publisher.frame(session_id, index, frame.t, lm)
            with self.lock:  # the train outlives its queued frames: only _maybe_end clears it
                if self.train is not None:
                    self.train.published += sent
                    self.train.dropped += not sent

    def _maybe_end(self) -> None:
        """After the train stops: once every pulse's frame is through (or the grace expired)."""
        with self.lock:
            t = self.train
            if t is None or t.pulses_sent is None or not self.frames.empty():
                return
            all_in = t.indexer.last_index >= t.pulses_sent - 1
            if not all_in and time.monotonic() - t.ended_at < self.config.end_grace_s:
                return
            self.train = None
        missed = t.indexer.finish(t.pulses_sent)
        self.publisher.end(NodeEnd(
            session_id=t.session_id, view=self.config.view,
            frames=t.published,
            captured=t.indexer.captured, missed_triggers=missed, dropped=t.dropped, simulated=self.simulated))
