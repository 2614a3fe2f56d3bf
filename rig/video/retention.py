"""Which recorded sessions a node forgets: those older than ``keep_days``, then the oldest
while the rest is over ``max_bytes``. The session being recorded is never chosen (its own
growth is bounded by the recorder). Pure: the caller lists and deletes."""
from __future__ import annotations

from .store import StoredClip

DAY_S = 86400.0


def to_delete(clips: list[StoredClip], max_bytes: int, keep_days: float, now_t: float,
              recording: int | None = None) -> list[int]:
    """Session ids to delete, oldest first."""
    candidates = sorted((c for c in clips if c.session_id != recording), key=lambda c: (c.modified_t, c.session_id))
    doomed = [c for c in candidates if now_t - c.modified_t > keep_days * DAY_S]
    kept = [c for c in candidates if c not in doomed]
    total = sum(c.bytes for c in clips if c not in doomed)
    for c in kept:
        if total <= max_bytes:
            break
        doomed.append(c)
        total -= c.bytes
    return [c.session_id for c in doomed]
