"""How the side views' events of one foot are combined.

Both side views time every event, each with a session-wide offset of its own (the contact
template is fitted per view and session) and a per-event error. Weighting each event by
its own fit quality mixes the two views' offsets in proportions that change from event to
event and from one noise draw to the next — worst where one view sees a foot poorly (the
far leg, occluded by the near one on real video): the same walk's left/right step-time
asymmetry then moved between recordings. Here every event of a foot is the average of
the views that timed it with one weight per view for the whole session (the median of
that view's per-event weights: landmark visibility / fit residual²), so the near view,
which sees the foot best, decides in the same proportion for every event of the session.
"""
from __future__ import annotations

import numpy as np

from .events import EventList, fuse_events


def session_weighted_events(lists: dict[str, EventList], tol_s: float) -> EventList:
    """One foot's events from ``lists`` (view name -> that view's events of the foot):
    events closer than ``tol_s`` are one event, averaged with the views' session weights."""
    steady = [EventList(e.time_s, np.full(len(e.time_s), float(np.median(e.weight))), e.source)
              for e in lists.values() if len(e.time_s)]
    return fuse_events(steady, tol_s)
