"""How numbers, intervals, times and durations read on the tablet.

One place for it, so the pages, the tests and any other tool print a value the same way.
A missing value (None, NaN) is an em dash, never a made-up 0.
"""
from __future__ import annotations

import math
import time
from typing import Sequence

MISSING = "—"
MINUS = "−"  # a real minus sign: a hyphen is easy to miss at arm's length


def is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def number(v: object, digits: int = 1, signed: bool = False) -> str:
    """``61.7``; ``+2.0`` with ``signed``; the minus as U+2212."""
    if not is_number(v):
        return MISSING
    text = f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"
    if text.lstrip("+-").strip("0.") == "":  # -0.0 and +0.0 read as 0.0
        text = f"{0:.{digits}f}"
    return text.replace("-", MINUS)


def interval(ci: Sequence | None, digits: int = 1, signed: bool = False) -> str:
    """A 95 % CI as ``61.6 to 61.8`` ("to", not a dash, which reads like a minus)."""
    if not ci or len(ci) != 2 or not all(is_number(c) for c in ci):
        return MISSING
    return f"{number(ci[0], digits, signed)} to {number(ci[1], digits, signed)}"


def clock(t: float | None) -> str:
    """Unix time as the rig's local date and time: ``Mon 3 Mar 2025, 14:02``."""
    if not is_number(t):
        return MISSING
    lt = time.localtime(t)
    return time.strftime(f"%a {lt.tm_mday} %b %Y, %H:%M", lt)


def duration(seconds: float | None) -> str:
    """``45 s``, ``5 min 12 s``, ``1 h 02 min``."""
    if not is_number(seconds) or seconds < 0:
        return MISSING
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def percent_of(part: int | None, whole: int | None) -> str:
    if part is None or not whole:
        return MISSING
    return f"{100.0 * part / whole:.1f} %"
