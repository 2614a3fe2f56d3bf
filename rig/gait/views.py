"""How the side views' timings of one foot's events are combined into one.

Both side views time every event, each with an error of its own. Weighting each event by
its own fit quality (landmark visibility / fit residual²) mixed the two views in
proportions that changed from event to event and from one noise draw to the next; where the
views' timings differ systematically — the far leg, seen through the near one on real
video, or label repairs in one view — the same walk's left/right step-time asymmetry then
moved between recordings. Here each view has one weight per foot and event kind for the
whole session, the median of its per-event weights: the view that sees a foot best (higher
visibility, smaller residuals) decides its events in the same proportion for every event of
the session, and a noise draw can no longer re-mix the views event by event.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .events import EventList, fuse_events


class SessionWeightFusion:
    """Fuse one foot's per-view event lists with one weight per view for the session.

    Attributes (after ``fuse``)
    ---------------------------
    weight_ : view -> the session weight used (median of the view's per-event weights).
    """

    def fuse(self, lists: dict[str, EventList], tol_s: float) -> EventList:
        """``lists``: view name -> that view's events of the foot; events of different views
        closer than ``tol_s`` are one event, their times averaged with the session weights."""
        lists = {v: e for v, e in lists.items() if len(e.time_s)}
        self.weight_ = {v: float(np.median(e.weight)) for v, e in lists.items()}
        return fuse_events([replace(e, weight=np.full(len(e.time_s), self.weight_[v])) for v, e in lists.items()],
                           tol_s)
