"""What the video review offers to jump to: each detected gait event of the report, as the
trigger index of its frame — pure. Event times in a report are seconds from the session's
first pulse (pulse k at k / fps), so an event's frame is round(t · fps).

Per foot, numbered from 1 in time order: heel strike k, mid-stance k (halfway between heel
strike k and the first toe off after it, before the next heel strike), toe off k.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

SIDES = ("left", "right")
KIND_LABELS = {"heel_strike": "heel strike", "mid_stance": "mid-stance", "toe_off": "toe off"}


@dataclass(frozen=True)
class ReviewEvent:
    side: str
    kind: str  # heel_strike, mid_stance, toe_off
    number: int
    index: int  # trigger index of its frame
    t_s: float

    @property
    def label(self) -> str:
        return f"{self.side} {KIND_LABELS[self.kind]} {self.number}"


def review_events(report: dict | None, fps: float) -> list[ReviewEvent]:
    """Every event of the report's ``events`` section, in time order (both feet)."""
    events = (report or {}).get("events") or {}
    out: list[ReviewEvent] = []
    for side in SIDES:
        e = events.get(side) or {}
        strikes = _times(e.get("heel_strike_s"))
        offs = _times(e.get("toe_off_s"))
        for kind, times in (("heel_strike", strikes), ("toe_off", offs)):
            out += [ReviewEvent(side, kind, k, round(t * fps), t) for k, t in enumerate(times, 1)]
        for k, hs in enumerate(strikes, 1):
            nxt = strikes[k] if k < len(strikes) else math.inf
            to = next((t for t in offs if hs < t < nxt), None)
            if to is not None:
                mid = (hs + to) / 2
                out.append(ReviewEvent(side, "mid_stance", k, round(mid * fps), mid))
    return sorted(out, key=lambda ev: (ev.t_s, ev.side, ev.kind))


def _times(values) -> list[float]:
    if not isinstance(values, list):
        return []
    return sorted(float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v) and v >= 0)


KINDS = ("heel_strike", "mid_stance", "toe_off")


@dataclass(frozen=True)
class EventTable:
    """The jump list as the tablet shows it: one row per foot, one column per event kind, one
    stride number at a time — a hundred buttons in a row cannot be read on a 10-inch screen."""

    numbers: tuple[int, ...]  # the stride numbers that have at least one event, ascending
    cells: dict[tuple[str, str], dict[int, ReviewEvent]]  # (side, kind) -> number -> event

    @property
    def sides(self) -> tuple[str, ...]:
        return SIDES

    @property
    def kinds(self) -> tuple[tuple[str, str], ...]:
        return tuple((k, KIND_LABELS[k]) for k in KINDS)


def event_table(events: list[ReviewEvent]) -> EventTable:
    """Group the events by foot and kind under their own numbers (heel strike k, mid-stance k,
    toe off k), which are what the buttons say."""
    cells: dict[tuple[str, str], dict[int, ReviewEvent]] = {(s, k): {} for s in SIDES for k in KINDS}
    for ev in events:
        cells[(ev.side, ev.kind)][ev.number] = ev
    numbers = tuple(sorted({ev.number for ev in events}))
    return EventTable(numbers, cells)
