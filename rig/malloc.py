"""glibc malloc settings for the rig's two kinds of process (no-ops on another libc).

glibc serves a block of at least the mmap threshold (128 kB at start) from a fresh mmap
and returns it to the OS on free, until the first such block is freed; then it raises the
threshold to that block's size and keeps later ones in the heap. What a process wants is
the opposite for the two kinds here:

- a camera node holds megabyte frames for a moment each and must not grow: every frame an
  mmap, returned on free (:func:`return_freed_frames_to_the_os`);
- ``gaitrig analyze`` builds and drops large arrays one after the other while it parses
  keypoint files: an mmap each means page-faulting fresh memory every time, which made
  parsing a 10-minute file 1.6x slower (:func:`keep_freed_blocks_for_reuse`). Which of the
  two it got used to depend on whether some unrelated import had freed a big block first.
"""
from __future__ import annotations

import ctypes
from functools import cache

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's malloc.h


@cache
def _glibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


def _mallopt(*settings: tuple[int, int]) -> bool:
    libc = _glibc()
    return libc is not None and all(libc.mallopt(param, value) == 1 for param, value in settings)


def return_freed_frames_to_the_os() -> bool:
    """A fixed 1 MB threshold keeps every frame an mmap, returned on free; two arenas stop
    each thread (capture, inference, MQTT...) from growing its own."""
    return _mallopt((M_MMAP_THRESHOLD, 1 << 20), (M_ARENA_MAX, 2))


def release_free_memory() -> bool:
    """Give the pages of freed heap blocks back to the OS (glibc ``malloc_trim``). A node's
    heap holds blocks below the mmap threshold — gray body crops waiting in memory, crops
    read back from disk, OpenCV and TFLite scratch — freed in another order than taken, so
    the heap cannot shrink from its top and its free middle stays resident: 15-20 MB of a
    node's RSS at Pi speed. 0.1-0.3 ms measured; the node calls it about once a second."""
    libc = _glibc()
    return libc is not None and bool(libc.malloc_trim(0))


def keep_freed_blocks_for_reuse(bound_bytes: int = 512 << 20) -> bool:
    """Blocks below ``bound_bytes`` come from the heap, and freed memory stays for reuse up
    to the same bound (a batch job: its memory goes back when it exits)."""
    return _mallopt((M_MMAP_THRESHOLD, bound_bytes), (M_TRIM_THRESHOLD, bound_bytes))
