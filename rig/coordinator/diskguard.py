"""The coordinator's answer to a full disk: a bounded, announced loss, a consistent database,
a daemon that keeps running, and sessions that still close.

Two lines of defence. Before the wall: with less room than the reserve left for the
database (free space, or the process's file size limit), frames are counted as lost instead
of stored, so the reserve stays for what must not be lost — a session's counts, its
closing, its report. At the wall: a write that fails ("database or disk is full", "disk I/O
error") rolls back to the last commit; the frames that transaction held are counted as
lost, exactly. Writes that must not be lost are committed on their own and, if refused,
retried until the disk has room. One error line per episode; diagnostics show the rest.
"""
from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from typing import Callable

from rig.bus.payloads import clip
from rig.coordinator.storage import Storage

log = logging.getLogger(__name__)
CHECK_EVERY_FRAMES = 100  # a flood of frames cannot eat the reserve between two checks
LostFrames = Callable[[int, str, int], None]  # (session, view, frames) lost


class DiskGuard:
    def __init__(self, storage: Callable[[], Storage], reserve_bytes: float, on_lost: LostFrames):
        self._storage, self.reserve_bytes, self._on_lost = storage, reserve_bytes, on_lost
        self.problem: str | None = None  # set by a failure or a lack of room, until a session opens cleanly
        self.failures = 0  # writes SQLite refused
        self.frames_lost = 0  # since start
        self.paused = False  # too little room: frames are not stored
        self._deferred: list[tuple] = []  # refused durable writes, (fn, *args), retried in order
        self._stored_since_check = 0

    def failed(self, error: sqlite3.Error) -> None:
        """Roll back to the last commit; count and announce the frames that held."""
        self.failures += 1
        try:
            lost = self._storage().abandon()
        except sqlite3.Error as e:
            lost, error = Counter(), e
        for (sid, view), n in lost.items():
            self._lose(sid, view, n)
        kind = "disk full" if _disk_full(error) else "database error"
        self._announce(f"{kind}: {clip(str(error), 200)}", f"rolled back to the last commit, {sum(lost.values())} "
                       "frames lost; the session goes on and says what it lost")

    def refuse_frame(self, sid: int, view: str) -> None:
        """A frame not stored for lack of room: lost, and counted like one."""
        self._lose(sid, view, 1)

    def frame_stored(self) -> None:
        self._stored_since_check += 1
        if self._stored_since_check >= CHECK_EVERY_FRAMES:
            self._check_room()

    def durable(self, fn, *args, defer: bool = True):
        """Commit a small write at once; after a failure try once more (the rollback and a
        checkpoint make room). Returns fn's result; None if refused twice, and then (unless
        ``defer`` is False) the write is retried by every ``retry()`` until it goes in."""
        for _ in range(2):
            try:
                result = fn(*args)
                self._storage().commit()
                return result
            except sqlite3.Error as e:
                self.failed(e)
        if defer:
            self._deferred.append((fn, *args))
        return None

    def retry(self) -> None:
        """The periodic commit's turn: refused durable writes, then the room check."""
        while self._deferred:
            fn, *args = self._deferred[0]
            try:
                fn(*args)
                self._storage().commit()
            except sqlite3.Error as e:
                self.failed(e)
                break
            self._deferred.pop(0)
        self._check_room()

    def session_opened(self) -> None:
        """The session's row committed: writes work; a new episode starts."""
        if not self.paused:
            self.problem = None

    def _check_room(self) -> None:
        self._stored_since_check = 0
        room = self._storage().headroom_bytes()
        if not self.paused and room < self.reserve_bytes:
            self.paused = True
            self._announce(f"disk full: {room / 1e6:.2f} MB left for the database, less than the "
                           f"{self.reserve_bytes / 1e6:.2f} MB reserve", "frames are counted as lost until there "
                           "is room; sessions still close")
        elif self.paused and room >= 2 * self.reserve_bytes:
            self.paused = False
            log.warning("the database has room again (%.1f MB): storing frames", room / 1e6)

    def _lose(self, sid: int, view: str, n: int) -> None:
        self.frames_lost += n
        self._on_lost(sid, view, n)

    def _announce(self, problem: str, consequence: str) -> None:
        first = self.problem is None
        self.problem = problem
        log.log(logging.ERROR if first else logging.DEBUG, "database write failed (%s): %s (%d frames lost in all)",
                problem, consequence, self.frames_lost)


def _disk_full(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    return "full" in text or "disk i/o" in text
