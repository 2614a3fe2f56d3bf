"""The camera-node daemon: capture never blocks, inference runs on its own thread behind
a bounded buffer (memory, then compressed crops on disk), every frame is labelled with its
trigger index and published — inferred on keyframes or tracked between them, as the node's
self-measured speed and measured per-frame overhead allow (rig/node/pacing.py). A stretch
that waited on disk is finished after the belt stops, as a run of its own: the stage
restarts at every gap in the indices, so flow never bridges one.

Session control comes over MQTT: the retained session state says which session is
recording; the retained trigger state says when the train started (pulse 0) and, once
disarmed, how many pulses were sent — the node then finishes its backlog and reports
its end-of-session count.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable

import numpy as np

from edge_models.pose.keyframes import Estimate
from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import ErasedSessions, NodeEnd, NodeInfo, SessionState, TriggerState, decode
from rig.config import NodeConfig
from rig.malloc import release_free_memory
from rig.node.camera import CameraError, CapturedFrame, camera_picture
from rig.node.crop_spool import Backlog, CropSpool
from rig.node.clock import WallClock
from rig.node.diagnostics import node_hooks
from rig.node.pacing import OverheadMeter
from rig.node.publisher import KeypointPublisher
from rig.node.spool import Spool
from rig.node.stages import ImmediateStage
from rig.node.trigger import TriggerIndexer
from rig.ops import notify
from rig.ops.diag import DiagAgent
from rig.video.node import build_video

if TYPE_CHECKING:
    from rig.node.cli import NodeParts

log = logging.getLogger(__name__)
EARLY_FRAMES = 240  # frames kept while no train is known: 2 s at 120 Hz (older ones are not ours)
SAME_TRAIN_S = 0.1
WATCHDOG_STALL_S = 5.0
CAMERA_RETRY_S = 2.0
LATENCY_WINDOW = 600  # the last ten seconds at 60 fps
TRIM_EVERY_S = 1.0  # freed heap pages go back to the OS this often (rig.malloc.release_free_memory)
Estimator = Callable[[CapturedFrame, int], "np.ndarray | None"]


@dataclass
class NodeStats:
    """Counters since start, for diagnostics (a Train's own counts end with its session)."""
    frames_in: int = 0  # camera frames read
    frames_out: int = 0  # keypoint frames published (or spooled)
    dropped: int = 0
    missed_triggers: int = 0
    spooled: int = 0  # frames that waited on disk as crops
    latency_ms: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))  # estimator per frame
    publish_latency_ms: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))  # exposure -> sent
    last_frame: CapturedFrame | None = None
    last_frame_mono: float | None = None
    camera_error: str | None = None  # why the camera cannot be opened or read, until it recovers


@dataclass
class Train:
    """One trigger train of a session. Frames are indexed in monotonic time, with the wall
    clock's offset taken when the train started: a step of the node's clock mid-walk moves
    no frame. A frame's time is its pulse's, on the rig's clock (hardware triggering makes
    the pulse the exposure instant), whatever this node's clock says."""
    session_id: int
    first_pulse_t: float  # rig clock, Unix s
    rate_hz: float
    wall_minus_mono: float  # this node's, when the train started
    indexer: TriggerIndexer = field(init=False)
    pulses_sent: int | None = None  # known once the train is disarmed
    ended_at: float | None = None
    dropped: int = 0
    published: int = 0
    tracked: int = 0
    spooled: int = 0
    backlog_at_end: int = 0

    def __post_init__(self) -> None:
        self.indexer = TriggerIndexer(self.first_pulse_t - self.wall_minus_mono, self.rate_hz)

    def same_train(self, trig: TriggerState) -> bool:
        """Reports of one train differ only by clock-sync refinements: milliseconds, though
        over a long session more than a period; a new train starts after a disarm, later."""
        return trig.rate_hz == self.rate_hz and abs(trig.first_pulse_t - self.first_pulse_t) < SAME_TRAIN_S

    def ended_by(self, trig: TriggerState) -> bool:
        """A disarmed report ends this train unless it names another (an older one's, restored)."""
        return trig.first_pulse_t is None or self.same_train(trig)

    def index(self, frame: CapturedFrame) -> int | None:
        mono = frame.mono if frame.mono is not None else frame.t - self.wall_minus_mono
        return self.indexer.index(mono)

    def pulse_t(self, index: int) -> float:
        return self.first_pulse_t + index / self.rate_hz


class NodeDaemon:
    def __init__(self, config: NodeConfig, parts: "NodeParts"):
        self.config, self.camera, self.parts = config, parts.camera, parts
        self.clock = WallClock(config.camera.clock_offset_file)
        self.model_name, self.facing = parts.model_name, parts.facing
        self.simulated = simulated = parts.camera.name == "simulated"
        self.bus = BusClient(config.mqtt, f"node-{config.view}", simulated=simulated)
        spool = Spool(config.spool_dir / f"spool-{config.view}.sqlite", int(config.spool_max_mb * 1e6))
        self.publisher = KeypointPublisher(self.bus, config.view, simulated, spool, config.resend_window_s)
        self.stage = parts.stage or ImmediateStage(lambda frame: parts.estimator(frame, 0))
        self.frames = Backlog(config.backlog_max_mb * 1e6, self._crop_spool(config, "crops"),
                              crops_max_bytes=0.0 if self.simulated else config.backlog_crops_max_mb * 1e6)
        self._stage_session: int | None = None  # the session whose frames the stage holds
        self._stage_next: int | None = None  # the index that continues the stage's run of frames
        self.overhead = OverheadMeter()  # per-frame CPU outside the stage, for the pacer
        self.live = notify.Liveness(stall_after_s=WATCHDOG_STALL_S)
        self._camera_open = False
        self.lock = threading.Lock()
        self.recording_session: int | None = None
        self._trigger_t = 0.0  # time of the newest trigger state received
        self.train: Train | None = None
        # frames exposed while no train is known yet (indexed, or found not ours, when one starts):
        # the same memory bound as the backlog's (the backlog is empty then), the rest as crops
        self.early = Backlog(config.backlog_max_mb * 1e6, self._crop_spool(config, "early"), fifo=True)
        self.bus.on(topics.SESSION_STATE, self._on_session)
        self.bus.on(topics.TREADMILL_TRIGGER, self._on_trigger)
        self.stats = NodeStats()
        self.pending_rate_hz: float | None = None
        self._preview_at = 0.0  # monotonic time of the last live-preview message
        self.infer_lock = threading.Lock()  # the estimator is shared with the self-test
        self.diag = DiagAgent(self.bus, config, node_hooks(self))
        picture = None if parts.encoded_video else (parts.picture or camera_picture)
        self.video = build_video(config, picture, lambda: (self.camera.width, self.camera.height))
        if self.video is not None and self.video.recorder.encoded:
            self.camera.record_to(self.video.recorder)  # picamera2's own encoder makes the pictures
        if self.video is not None:
            self.bus.on(topics.SESSION_ERASED, self._on_erased)

    def _crop_spool(self, config: NodeConfig, name: str) -> CropSpool | None:
        """Frames past a memory bound wait on disk; the simulated camera's are a few kB of pose."""
        if self.simulated:
            return None
        return CropSpool(config.spool_dir / f"{name}-{config.view}", int(config.crop_spool_max_mb * 1e6))

    # -- control over MQTT --------------------------------------------------------------------
    def _on_session(self, msg) -> None:
        state = decode(SessionState, msg.payload)
        with self.lock:
            self.recording_session = state.session_id if state.state == "recording" else None

    def _on_erased(self, msg) -> None:
        """Sessions erased with their patient: their review video goes (retained, so also
        those erased while this node was off)."""
        erased = decode(ErasedSessions, msg.payload)
        with self.lock:
            recording = self.recording_session
        self.video.erase(erased.session_ids, recording)

    def _on_trigger(self, msg) -> None:
        trig = decode(TriggerState, msg.payload)
        with self.lock:
            if trig.t < self._trigger_t:
                return  # older than one we had: a retained state a crashed broker restored
            self._trigger_t = trig.t
            t = self.train
            if trig.armed and trig.first_pulse_t is not None and self.recording_session is not None:
                if t is None or not t.same_train(trig):
                    self._start_train(self.recording_session, trig)
            elif not trig.armed and t is not None and t.pulses_sent is None and t.ended_by(trig):
                t.pulses_sent, t.ended_at = trig.pulses_sent, time.monotonic()
                t.backlog_at_end = len(self.frames)
                self.frames.live_session = None  # no live frame is coming: finish the spooled stretches

    def _start_train(self, session_id: int, trig: TriggerState) -> None:
        log.info("session %d: train armed at %.1f Hz", session_id, trig.rate_hz)
        self.train = Train(session_id, trig.first_pulse_t, trig.rate_hz, self.clock.wall_minus_mono())
        self.frames.live_session = session_id  # live frames first; its spooled stretches wait for the belt to stop
        if self.video is not None:
            self.video.recorder.begin(session_id, trig.rate_hz)
        self.pending_rate_hz = trig.rate_hz  # the inference thread re-paces before its next frame
        while (item := self.early.get(0.0)) is not None:
            self._enqueue(self.train, item[2])

    # -- threads -------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.bus.start()
        workers = [threading.Thread(target=self._infer_loop, args=(stop,), name="inference", daemon=True),
                   threading.Thread(target=self.publisher.replay, args=(stop,), name="replay", daemon=True)]
        for w in workers:
            w.start()
        self.diag.start(stop)
        if self.video is not None:
            workers.append(self.video.start(stop))
        try:
            with notify.Watchdog(self.live):
                notify.ready(f"{self.config.view}: {self.camera.name} camera, waiting for a session")
                self._capture_loop(stop)
        finally:
            notify.stopping()
            self.diag.close()
            if self.video is not None:
                self.video.close()
            for w in workers:
                w.join(5)
            self.publisher.spool.close()
            if self._camera_open:
                self.camera.close()
            self.bus.close()
        self.diag.exit_if_restart()

    def _open_camera(self, stop: threading.Event) -> bool:
        """Open the camera, or report why not and try again later: the node keeps running."""
        try:
            self.camera.open()
        except CameraError as e:
            self._camera_failed(e)
            stop.wait(CAMERA_RETRY_S)
            return False
        if self.stats.camera_error:
            log.info("camera %s is back", self.camera.name)
        self.stats.camera_error, self._camera_open = None, True
        self.bus.send(topics.NODE_INFO, NodeInfo(
            view=self.config.view, width=self.camera.width, height=self.camera.height,
            facing=self.facing, camera=self.camera.name, model=self.model_name,
            pacing=self.stage.figures(), simulated=self.simulated,
            clips_url=self.video.url if self.video else None), view=self.config.view)
        return True

    def _camera_failed(self, e: CameraError) -> None:
        if str(e) != self.stats.camera_error:  # logged once per distinct failure
            log.error("%s; retrying every %.0f s", e, CAMERA_RETRY_S)
        self.stats.camera_error = str(e)
        if self._camera_open:
            self._camera_open = False
            try:
                self.camera.close()
            except Exception:  # a failed camera may fail to close too; we reopen it anyway
                log.debug("closing the failed camera raised", exc_info=True)

    def _read_frame(self, stop: threading.Event) -> CapturedFrame | None:
        if not self._camera_open and not self._open_camera(stop):
            return None
        try:
            return self.camera.read(0.1)
        except CameraError as e:
            self._camera_failed(e)
            return None

    def _capture_loop(self, stop: threading.Event) -> None:
        cpu_s = time.thread_time()
        while not stop.is_set():
            frame = self._read_frame(stop)
            if frame is not None or self.train is None:
                self.live.beat()  # during a train, only frames count: a camera that stops gets restarted
            if frame is None:
                continue
            now_s = time.thread_time()
            if self.train is not None:  # this thread's CPU per frame: waiting for, decoding, queueing it
                self.overhead.add("capture", (now_s - cpu_s) * 1000)
            cpu_s = now_s
            st = self.stats
            st.frames_in, st.last_frame, st.last_frame_mono = st.frames_in + 1, frame, time.monotonic()
            with self.lock:
                if self.train is not None:
                    self._enqueue(self.train, frame)
                else:  # the first pulses can beat the session's and the train's reports to a busy node
                    self.early.put(0, 0, frame, self.stage.region)  # no index before the train is known
                    while len(self.early) > EARLY_FRAMES:
                        self.early.drop_oldest()

    def _enqueue(self, t: Train, frame: CapturedFrame) -> None:
        index = t.index(frame)
        if index is None or (t.pulses_sent is not None and index >= t.pulses_sent):
            return
        frame = replace(frame, t=t.pulse_t(index))  # the pulse is the exposure instant, on the rig's clock
        if self.video is not None:
            self.video.recorder.put(t.session_id, index, frame)
        where = self.frames.put(t.session_id, index, frame, self.stage.region)
        if where == "refused":
            t.dropped += 1
            self.stats.dropped += 1
            if t.dropped == 1:
                log.error("session %d: frames are being lost: the disk spool of crops is full (%.0f MB)",
                          t.session_id, self.config.crop_spool_max_mb)
        elif where == "disk":
            t.spooled += 1
            self.stats.spooled += 1
            if t.spooled == 1:
                log.warning("session %d: inference is behind; frames wait on disk as crops", t.session_id)

    def _infer_loop(self, stop: threading.Event) -> None:
        trimmed_s = time.monotonic()
        while not stop.is_set():
            if (now_s := time.monotonic()) - trimmed_s >= TRIM_EVERY_S:
                trimmed_s = now_s
                release_free_memory()
            cpu0_s = time.thread_time()
            item = self.frames.get(timeout_s=0.05)
            if item is None:
                self._maybe_end()
                continue
            session_id, index, frame = item
            got_s = time.thread_time() - cpu0_s
            if session_id != self._stage_session:
                self._flush_stage()
                self._stage_session = session_id
            elif index != self._stage_next:  # a gap: a stretch that waited on disk, a missed trigger
                self._restart_stage(skipped=index - self._stage_next)
            self._stage_next = index + 1
            if (rate_hz := self.pending_rate_hz) is not None:
                self.pending_rate_hz = None
                self.stage.set_rate(rate_hz)
            self.stage.overhead_ms = self.overhead.ms
            t0 = time.perf_counter()
            with self.infer_lock:
                estimates = self.stage.push(index, frame)
            self.stats.latency_ms.append((time.perf_counter() - t0) * 1000)
            cpu1_s = time.thread_time()
            self._publish(session_id, estimates)
            # this thread's CPU around the stage per frame: fetching the frame, publishing (the
            # stage's own work, restarts included, is the pacer's model, not overhead)
            self.overhead.add("fetch", got_s * 1000)
            self.overhead.add("publish", (time.thread_time() - cpu1_s) * 1000)

    def _publish(self, session_id: int | None, estimates: list[Estimate]) -> None:
        fps = self.config.preview_fps
        if estimates and fps > 0 and (now := time.monotonic()) - self._preview_at >= 1.0 / fps:
            self._preview_at = now
            e = estimates[-1]
            self.publisher.preview(session_id, e.index, e.t, e.lm)
        for e in estimates:
            sent = self.publisher.frame(session_id, e.index, e.t, e.lm, e.tracked, e.interpolated)
            self.stats.publish_latency_ms.append((time.time() - e.t) * 1000)
            self.stats.frames_out += sent
            self.stats.dropped += not sent
            with self.lock:  # the train outlives its queued frames: only _maybe_end clears it
                t = self.train
                if t is not None and t.session_id == session_id:
                    t.published += sent
                    t.dropped += not sent
                    t.tracked += sent and e.tracked

    def _flush_stage(self) -> None:
        """Publish the frames the stage holds for its next keyframe (a session ended)."""
        with self.infer_lock:
            estimates = self.stage.flush()
        self._publish(self._stage_session, estimates)
        self._stage_session = self._stage_next = None

    def _restart_stage(self, skipped: int) -> None:
        """Publish the frames the stage holds (closed by a keyframe); the next frame anchors
        anew, ``skipped`` frames after the last one (negative: back in time)."""
        with self.infer_lock:
            estimates = self.stage.restart(skipped)
        self._publish(self._stage_session, estimates)

    def _maybe_end(self) -> None:
        """After the train stops: once every pulse's frame is through (or the grace expired)."""
        with self.lock:
            t = self.train
            if t is None or t.pulses_sent is None or len(self.frames):
                return
            all_in = t.indexer.last_index >= t.pulses_sent - 1
            # a camera still delivering the train's frames (catching up) is waited for
            last_progress = max(t.ended_at, self.stats.last_frame_mono or 0.0)
            if not all_in and time.monotonic() - last_progress < self.config.end_grace_s:
                return
        self._flush_stage()
        with self.lock:
            if self.train is t:  # (a new train may have been armed meanwhile)
                self.train = None
        missed = t.indexer.finish(t.pulses_sent)
        if self.video is not None:
            self.video.recorder.end(t.session_id)
        self.stats.missed_triggers += missed
        self.publisher.end(NodeEnd(
            session_id=t.session_id, view=self.config.view,
            frames=t.published,
            captured=t.indexer.captured, missed_triggers=missed, dropped=t.dropped,
            backlog_at_train_end=t.backlog_at_end, tracked=t.tracked, spooled=t.spooled,
            simulated=self.simulated))
        self.diag.report_now()
