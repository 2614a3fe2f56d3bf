"""Frames waiting for the estimator: in memory while there is room (whole, then as gray
crops of the body region), then on disk as compact grayscale JPEG crops, finished after the
belt stops.

A full Global Shutter frame is 4.75 MB in memory; its body region in gray is about a fifth
of that, and as a JPEG some 30-100 kB, so a disk bound of a few GB holds minutes of frames a
slow node could not finish live. Live frames go to memory whenever it has room; a stretch
that found it full waits on disk and is finished later, as its own run of frames (see
:class:`Backlog`). Past the disk bound frames are refused: the caller counts and announces
them. The node keeps a second such queue for frames exposed before their train is known (a
120 Hz camera whose session reports come a second late would otherwise hold 120 full frames
in RAM).

A cropped frame comes back as a full-size BGR image, black outside the crop, so positions
(and the estimator's tracking state) stay in camera pixels; the landmark model sees the
body in gray, which costs a little accuracy on those frames only.
"""
from __future__ import annotations

import shutil
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_models.pose.tracking import Region
from rig.node.camera import CapturedFrame

JPEG_QUALITY = 90


@dataclass(frozen=True)
class BodyCrop:
    """A frame's body region in grayscale, where it lies in the frame, and the frame's times."""
    gray: np.ndarray
    x0: int
    y0: int
    width: int  # of the whole frame
    height: int
    t: float
    mono: float | None

    @classmethod
    def of(cls, frame: CapturedFrame, region: Region | None) -> "BodyCrop":
        h, w = frame.image.shape[:2]
        x0, y0, x1, y1 = (region.x0, region.y0, region.x1, region.y1) if region else (0, 0, w, h)
        gray = cv2.cvtColor(frame.image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        return cls(gray, x0, y0, w, h, frame.t, frame.mono)

    def frame(self) -> CapturedFrame:
        """The frame at full size, black outside the crop: positions stay in camera pixels."""
        canvas = np.zeros((self.height, self.width, 3), np.uint8)
        ch, cw = self.gray.shape
        # OpenCV writes into the canvas's view: 1.5 ms for a 800x1600 crop, where numpy's
        # broadcast assignment of the gray channel to three takes 10
        cv2.cvtColor(self.gray, cv2.COLOR_GRAY2BGR, dst=canvas[self.y0:self.y0 + ch, self.x0:self.x0 + cw])
        return CapturedFrame(self.t, canvas, mono=self.mono)


@dataclass(frozen=True)
class _Entry:
    session_id: int
    index: int
    t: float
    mono: float | None
    path: Path
    nbytes: int
    x0: int
    y0: int
    width: int
    height: int


class CropSpool:
    """The disk tier: one JPEG per frame in ``directory`` (emptied at start), ``max_bytes`` in all."""

    def __init__(self, directory: Path, max_bytes: int, quality: int = JPEG_QUALITY):
        self.directory, self.max_bytes, self.quality = Path(directory), max_bytes, quality
        shutil.rmtree(self.directory, ignore_errors=True)  # crops of a previous run cannot be finished
        self.directory.mkdir(parents=True, exist_ok=True)
        self._entries: deque[_Entry] = deque()
        self._seq = 0
        self.bytes = 0

    @property
    def count(self) -> int:
        return len(self._entries)

    @property
    def head(self) -> tuple[int, int] | None:
        """(session, trigger index) of the oldest frame waiting (None: none waits)."""
        return (self._entries[0].session_id, self._entries[0].index) if self._entries else None

    def put(self, session_id: int, index: int, frame: CapturedFrame, region: Region | None) -> bool:
        """Write the frame's body region; False when that would pass the bound."""
        crop = BodyCrop.of(frame, region)
        ok, data = cv2.imencode(".jpg", crop.gray, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok or self.bytes + data.nbytes > self.max_bytes:
            return False
        path = self.directory / f"{self._seq:010d}.jpg"
        self._seq += 1
        path.write_bytes(data.tobytes())
        self._entries.append(_Entry(session_id, index, frame.t, frame.mono, path, data.nbytes, crop.x0, crop.y0,
                                    crop.width, crop.height))
        self.bytes += data.nbytes
        return True

    def get(self) -> tuple[int, int, CapturedFrame] | None:
        """The oldest frame, rebuilt at full size, or None when empty."""
        if not self._entries:
            return None
        e = self._entries[0]
        gray = cv2.imdecode(np.fromfile(e.path, np.uint8), cv2.IMREAD_GRAYSCALE)
        self.drop_oldest()
        return e.session_id, e.index, BodyCrop(gray, e.x0, e.y0, e.width, e.height, e.t, e.mono).frame()

    def drop_oldest(self) -> bool:
        """Forget the oldest frame unread; False when empty."""
        if not self._entries:
            return False
        e = self._entries.popleft()
        self.bytes -= e.nbytes
        e.path.unlink(missing_ok=True)
        return True


class Backlog:
    """Frames waiting for the estimator: in memory as they are (up to ``memory_max_bytes``),
    then in memory as gray body crops (up to ``crops_max_bytes``; a fifth of a frame's bytes),
    then on disk (a :class:`CropSpool`).

    ``put`` says where the frame went: "memory", "crop" (memory, as a crop), "disk", or
    "refused" (past every bound).

    Memory is one queue in trigger order, whatever form a frame waits in, so a node briefly
    behind (a detector run, a keyframe) catches up without a gap in its frames: a crop costs
    a gray conversion to keep and a canvas to give back, no JPEG, no disk.

    ``fifo`` True (the node's queue of frames exposed before their train is known): once a
    frame went to disk the following ones go there too until the disk tier is empty, and
    ``drop_oldest`` forgets memory first.

    ``fifo`` False (the train's frames): a frame that finds memory full starts a *spill*: it
    and the frames after it go to disk until the estimator has emptied memory (it caught
    up), so a spooled stretch is one run of consecutive trigger indices; then live frames
    wait in memory again. ``get`` gives memory first; the disk tier only when memory is empty
    and either its oldest frame is not of ``live_session`` (the daemon sets the session whose
    train runs; None once the belt stopped) or the disk tier holds more than half its bound
    (a long walk the node cannot keep up with still finishes its oldest crops). Frames
    therefore come out of trigger order; the consumer sees a gap in the indices and must not
    track across it (rig.node.daemon restarts the keyframe stage there). A disk stretch once
    begun is finished before memory is served again: frames still arriving after the belt
    stopped (a camera's trigger line catching up) would otherwise alternate with it one by
    one, each switch a restart that costs a detector run.
    """

    def __init__(self, memory_max_bytes: float, spool: CropSpool | None, fifo: bool = False,
                 crops_max_bytes: float = 0.0):
        self.memory_max_bytes, self.crops_max_bytes, self.spool, self.fifo = \
            memory_max_bytes, crops_max_bytes, spool, fifo
        self.memory_bytes = 0  # frames kept whole
        self.crop_bytes = 0  # frames kept as crops
        self.live_session: int | None = None  # whose live frames go first (the daemon's running train)
        self._spilling = False
        self._disk_next: tuple[int, int] | None = None  # the disk stretch being finished continues here
        self._memory: deque[tuple[int, int, CapturedFrame | BodyCrop]] = deque()
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._memory) + self.disk_count

    @property
    def disk_count(self) -> int:
        return self.spool.count if self.spool else 0

    def put(self, session_id: int, index: int, frame: CapturedFrame, region: Region | None = None) -> str:
        size = frame_bytes(frame)
        with self._cond:
            if not self._memory:
                self._spilling = False  # the estimator caught up: live frames wait in memory again
            behind = self.disk_count > 0 if self.fifo else self._spilling
            if not behind and self.memory_bytes + size <= self.memory_max_bytes:
                self._memory.append((session_id, index, frame))
                self.memory_bytes += size
                where = "memory"
            elif not behind and frame.image is not None and self.crop_bytes < self.crops_max_bytes:
                crop = BodyCrop.of(frame, region)
                self._memory.append((session_id, index, crop))
                self.crop_bytes += crop.gray.nbytes
                where = "crop"
            elif self.spool is not None and frame.image is not None \
                    and self.spool.put(session_id, index, frame, region):
                self._spilling = True
                where = "disk"
            else:
                return "refused"
            self._cond.notify()
        return where

    def drop_oldest(self) -> bool:
        """Forget the oldest frame of a ``fifo`` queue (memory first: it precedes the disk
        tier); False when empty."""
        with self._cond:
            if self._memory:
                self._forget(self._memory.popleft()[2])
                return True
            return self.spool is not None and self.spool.drop_oldest()

    def get(self, timeout_s: float) -> tuple[int, int, CapturedFrame] | None:
        """The next frame to estimate, or None after ``timeout_s`` with nothing ready."""
        with self._cond:
            if not self._memory and not self._disk_ready():
                self._cond.wait(timeout_s)
            if self._memory and not self._finishing_disk_stretch():
                # (in a fifo queue memory holds the older frames too)
                session_id, index, item = self._memory.popleft()
                self._forget(item)
            elif self._disk_ready():
                got = self.spool.get()
                self._disk_next = (got[0], got[1] + 1)
                return got
            else:
                return None
        return session_id, index, item.frame() if isinstance(item, BodyCrop) else item

    def _forget(self, item: CapturedFrame | BodyCrop) -> None:
        if isinstance(item, BodyCrop):
            self.crop_bytes -= item.gray.nbytes
        else:
            self.memory_bytes -= frame_bytes(item)

    def _finishing_disk_stretch(self) -> bool:
        return not self.fifo and self._disk_ready() and self.spool.head == self._disk_next

    def _disk_ready(self) -> bool:
        if not self.disk_count:
            return False
        return self.fifo or self.spool.head[0] != self.live_session \
            or self.spool.bytes > self.spool.max_bytes / 2


def frame_bytes(frame: CapturedFrame) -> int:
    """What a waiting frame holds in memory (the simulated camera's landmarks: ~1 kB)."""
    if frame.image is None:
        return 1024
    return frame.image.nbytes + (frame.luma.nbytes if frame.luma is not None else 0)
