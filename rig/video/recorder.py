"""The node's recorder: the frames of the session being filmed go to the clip store, on a
thread of its own behind a bounded queue, so capture never waits for a JPEG encoder or the
disk. Two ways in:

- :meth:`VideoRecorder.put` — a frame with its trigger index; the recorder makes a picture
  of it (``picture``: the camera's image, or the simulated walker drawn into a real frame),
  scales it to ``width_px`` and encodes it with OpenCV.
- :meth:`VideoRecorder.put_encoded` — a JPEG that picamera2's encoder made of a frame, known
  by its sensor timestamp; :meth:`VideoRecorder.indexed` tells which trigger index the
  daemon gave the frame of that timestamp, and the two are paired (in either order).

A frame that finds the queue full, or a session past the size bound, is not kept for review
and is counted; the keypoints are unaffected. Keypoints come first: the recorder's thread
runs at the lowest CPU priority (a node whose CPU is busy with the models keeps fewer
pictures, never fewer keypoints), and scales pictures bilinearly (a fractional INTER_AREA
resize of a 1080x1920 frame costs several times as much, for a picture a person looks at).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from rig.node.camera import CapturedFrame

from . import retention
from .store import ClipMeta, ClipStore, ClipWriter

log = logging.getLogger(__name__)
PAIR_TOLERANCE_S = 0.0005  # a sensor timestamp is the same frame's within half a millisecond
PAIR_WINDOW = 240  # frames of either side waiting for their pair
# frames waiting for the encoder: one full camera frame (1456x1088 or 1080x1920 BGR), 80 JPEGs of
# picamera2's encoder or walker poses. A Pi's RAM is the OS's too, and an encoder that lags lags
# for good: on a node whose CPU the models use, the recorder (nice 19) encodes a picture now and
# then, and every further frame it held was ~6 MB of RSS for nothing (its pictures are not kept
# either way, and counted); with 16 MB (2-3 frames) a 10-minute walk at Pi speed peaked 6 MB higher
QUEUE_MAX_BYTES = 8 * 2**20
Picture = Callable[[CapturedFrame], "np.ndarray | None"]
RECORDER_NICE = 19  # the lowest priority: review video gets the CPU the keypoints leave


@dataclass
class RecorderStats:
    recorded: int = 0
    not_kept: int = 0  # queue full, or the session over the size bound
    deleted_sessions: int = 0
    error: str | None = None  # why the disk refused, until it works again


class EncodedPairing:
    """Pairs encoder output (sensor time, JPEG) with the daemon's (sensor time, session,
    index) — pure, bounded: whichever comes second completes the pair."""

    def __init__(self, window: int = PAIR_WINDOW, tolerance_s: float = PAIR_TOLERANCE_S):
        self.tolerance_s = tolerance_s
        self._jpegs: deque[tuple[float, bytes]] = deque(maxlen=window)
        self._indices: deque[tuple[float, int, int]] = deque(maxlen=window)

    def jpeg(self, mono_s: float, data: bytes) -> tuple[int, int, bytes] | None:
        for k, (t, sid, index) in enumerate(self._indices):
            if abs(t - mono_s) <= self.tolerance_s:
                del self._indices[k]
                return sid, index, data
        self._jpegs.append((mono_s, data))
        return None

    def index(self, mono_s: float, session_id: int, index: int) -> tuple[int, int, bytes] | None:
        for k, (t, data) in enumerate(self._jpegs):
            if abs(t - mono_s) <= self.tolerance_s:
                del self._jpegs[k]
                return session_id, index, data
        self._indices.append((mono_s, session_id, index))
        return None


class VideoRecorder:
    def __init__(self, store: ClipStore, picture: Picture | None, source_size: Callable[[], tuple[int, int]],
                 width_px: int, jpeg_quality: int, max_bytes: int, keep_days: float, queue_frames: int = 120,
                 queue_max_bytes: int = QUEUE_MAX_BYTES):
        """``source_size``: the camera's frame size, asked at each session's start (a video
        file's is known only once opened); ``picture`` None: JPEGs come from put_encoded."""
        self.store, self.picture, self.source_size = store, picture, source_size
        self.width_px, self.jpeg_quality = width_px, jpeg_quality
        self.max_bytes, self.keep_days = max_bytes, keep_days
        self.stats = RecorderStats()
        self.encoded = picture is None  # pictures come from the camera's own encoder
        self._queue: queue.Queue = queue.Queue()
        self.queue_frames, self.queue_max_bytes = queue_frames, queue_max_bytes
        self._queued = [0, 0]  # frames, bytes waiting (a camera frame is megabytes: bound both)
        self._pairing = EncodedPairing()
        self._pair_lock = threading.Lock()
        self._writer: ClipWriter | None = None
        self._lock = threading.Lock()

    # -- the daemon's side ------------------------------------------------------------------
    def begin(self, session_id: int, fps: float) -> None:
        """A session's train started: forget what the bounds say to, then record it."""
        self.prune(recording=session_id)
        width, height = self.picture_size()
        source_width, source_height = self.source_size()
        with self._lock:
            if self._writer is not None and self._writer.meta.session_id == session_id:
                return
            self._close_writer()
            try:
                self._writer = self.store.writer(ClipMeta(session_id, self.store.view, fps, width, height,
                                                          source_width, source_height, time.time()))
            except OSError as e:
                self._failed(e)

    def end(self, session_id: int) -> None:
        self._queue.put(("end", session_id, None, 0))

    def put(self, session_id: int, index: int, frame: CapturedFrame) -> None:
        if self.encoded:
            if frame.mono is not None:
                with self._pair_lock:
                    done = self._pairing.index(frame.mono, session_id, index)
                if done:
                    self._offer(("jpeg", done[0], done[1:]), len(done[2]))
            return
        if frame.image is None:  # the simulated walker: a few kB of pose, drawn on this thread
            self._offer(("frame", session_id, (index, frame)), 1024, count_frames=False)
        else:
            self._offer(("frame", session_id, (index, frame)), frame.image.nbytes)

    def put_encoded(self, mono_s: float, jpeg: bytes) -> None:
        """From picamera2's encoder thread: a JPEG of the frame exposed at ``mono_s``."""
        with self._pair_lock:
            done = self._pairing.jpeg(mono_s, jpeg)
        if done:
            self._offer(("jpeg", done[0], done[1:]), len(done[2]))

    def _offer(self, item: tuple, size: int, count_frames: bool = True) -> None:
        """Queue ``item`` unless a bound says no. Camera pictures are bounded by count and
        bytes; the walker's poses (drawn later, when the belt has stopped if need be) by
        bytes only."""
        with self._pair_lock:
            frames, queued = self._queued
            if (count_frames and frames + 1 > self.queue_frames) or queued + size > self.queue_max_bytes:
                self.stats.not_kept += 1
                return
            self._queued = [frames + 1, queued + size]
        self._queue.put((*item, size))

    # -- the recorder's thread --------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        lower_this_threads_priority(RECORDER_NICE)
        while not stop.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self._handle(item)
        with self._lock:
            self._close_writer()

    def drain(self) -> None:
        """Handle everything queued now (tests, and the end of the daemon)."""
        while True:
            try:
                self._handle(self._queue.get_nowait())
            except queue.Empty:
                return

    def _handle(self, item: tuple) -> None:
        kind, session_id, payload, size = item
        if kind != "end":
            with self._pair_lock:
                self._queued = [self._queued[0] - 1, self._queued[1] - size]
        with self._lock:
            w = self._writer
            if kind == "end":
                if w is not None and w.meta.session_id == session_id:
                    self._close_writer()
                return
            if w is None or w.meta.session_id != session_id:
                self.stats.not_kept += 1
                return
            if w.bytes >= self.max_bytes:
                self.stats.not_kept += 1
                return
            if kind == "frame":
                index, frame = payload
                jpeg = self.encode(frame)
                if jpeg is None:
                    return
            else:
                index, jpeg = payload
            try:
                w.add(index, jpeg)
            except OSError as e:
                self._failed(e)
                return
            self.stats.recorded += 1
            self.stats.error = None

    def encode(self, frame: CapturedFrame) -> bytes | None:
        image = self.picture(frame)
        if image is None:
            return None
        if image.shape[1] > self.width_px:
            h = round(image.shape[0] * self.width_px / image.shape[1])
            image = cv2.resize(image, (self.width_px, h), interpolation=cv2.INTER_LINEAR)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        return buf.tobytes() if ok else None

    def picture_size(self) -> tuple[int, int]:
        width, height = self.source_size()
        scale = min(1.0, self.width_px / width) if width else 1.0
        return round(width * scale), round(height * scale)

    def prune(self, recording: int | None = None, now_t: float | None = None) -> list[int]:
        doomed = retention.to_delete(self.store.stored(), self.max_bytes, self.keep_days,
                                     time.time() if now_t is None else now_t, recording)
        for sid in doomed:
            self.store.delete(sid)
            log.info("session %d: review video deleted (older than %g days or over %.0f MB)", sid,
                     self.keep_days, self.max_bytes / 1e6)
        self.stats.deleted_sessions += len(doomed)
        return doomed

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _failed(self, e: OSError) -> None:
        if str(e) != self.stats.error:
            log.error("review video: cannot write to %s: %s", self.store.folder, e)
        self.stats.error = str(e)


def lower_this_threads_priority(nice: int) -> bool:
    """Give the calling thread the nice value ``nice``. On Linux a thread's nice value is its
    own: setpriority on its thread id changes this thread only, not the node's other threads.
    False where that is not possible (another OS, a sandbox); recording still works."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (OSError, AttributeError) as e:
        log.debug("review video: cannot lower the recorder's priority: %s", e)
        return False
    return True
