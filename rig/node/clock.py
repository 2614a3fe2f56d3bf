"""The node's wall clock as its camera timestamps see it.

A sensor timestamp is CLOCK_MONOTONIC, which never steps; Unix time is that plus the
wall clock's current offset, which does step (an NTP correction, a wrong real-time clock
at boot). The node indexes frames in monotonic time with the offset it had when the
trigger train started, so a step during a walk moves no frame off its trigger index.
"""
from __future__ import annotations

import os
import time
from pathlib import Path


def unix_minus_mono(tries: int = 5) -> float:
    """The wall clock's offset from the monotonic one, read so that a preemption between the
    two reads (frequent on a busy Pi) cannot skew it: of a few monotonic-bracketed reads,
    the tightest bracket wins (error below half of it, microseconds)."""
    best = (float("inf"), 0.0)
    for _ in range(tries):
        before = time.monotonic()
        wall = time.time()
        after = time.monotonic()
        best = min(best, (after - before, wall - (before + after) / 2))
    return best[1]


class WallClock:
    """``wall_minus_mono()``: seconds to add to a monotonic instant for Unix time.
    ``offset_file`` (simulated rigs only) holds seconds this node's wall clock is off by,
    so a fault test can step one node's clock while the others stay right."""

    def __init__(self, offset_file: Path | None = None):
        self.offset_file = offset_file
        self._cached: tuple[int, float] = (-1, 0.0)  # (mtime_ns, seconds)

    def wall_minus_mono(self) -> float:
        return unix_minus_mono() + self._injected_s()

    def _injected_s(self) -> float:
        if self.offset_file is None:
            return 0.0
        try:
            mtime = os.stat(self.offset_file).st_mtime_ns
            if mtime != self._cached[0]:
                self._cached = (mtime, float(Path(self.offset_file).read_text() or 0))
        except (OSError, ValueError):
            return 0.0
        return self._cached[1]
