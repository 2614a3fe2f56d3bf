"""What went wrong in a session, counted and kept with it: frames that conflicted with one
already stored and frames lost to a failed database write (per view), messages rejected
while it was recorded (per kind).

Counted in memory the moment it happens and written with the coordinator's periodic commit
(in the same transaction as the frames), so a restart neither loses the counts nor starts
them from zero: a resumed session takes them up from the database. A commit that fails (a
full disk) keeps them unsaved; the next one writes them.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

What = Literal["conflicts", "frames_lost", "rejected"]
WHATS: tuple[What, ...] = ("conflicts", "frames_lost", "rejected")


@dataclass(frozen=True)
class Counts:
    """One session's counts: ``conflicts`` and ``frames_lost`` per view, ``rejected`` per kind."""
    conflicts: dict[str, int] = field(default_factory=dict)
    frames_lost: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Counter[tuple[What, str]]) -> "Counts":
        by: dict[str, dict[str, int]] = {w: {} for w in WHATS}
        for (what, key), n in sorted(rows.items()):
            if n:
                by[what][key] = n
        return cls(**by)


class Tally:
    """Counts not yet committed, per (session, what, key)."""

    def __init__(self) -> None:
        self.unsaved: Counter[tuple[int, What, str]] = Counter()

    def add(self, sid: int | None, what: What, key: str, n: int = 1) -> None:
        if sid is not None and n:
            self.unsaved[sid, what, key] += n

    def snapshot(self) -> Counter[tuple[int, What, str]]:
        """What the next commit writes; ``saved(snapshot)`` once it committed."""
        return Counter(self.unsaved)

    def saved(self, written: Counter[tuple[int, What, str]]) -> None:
        self.unsaved.subtract(written)
        self.unsaved = +self.unsaved  # drop the zeros

    def pending(self, sid: int) -> Counter[tuple[What, str]]:
        return Counter({(w, k): n for (s, w, k), n in self.unsaved.items() if s == sid})
