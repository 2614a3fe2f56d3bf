"""Strides counted while the patient walks, for the live page.

Zeni et al. 2008 (coordinate method): a heel strike is the heel's most forward position
relative to the pelvis — :class:`rig.gait.events.CoordinateEventDetector`, run on the last
``window_s`` of one side camera's keypoints as they arrive. A heel strike is counted once it
is ``settle_s`` old (a peak at the newest frame may still move) and at least half a stride
after the last one counted. This is a live tally from one view; the report's numbers come
from the full analysis of all views after the belt stops.
"""
from __future__ import annotations

import numpy as np

from rig.gait._signals import HEEL, SIDES, TOE
from rig.gait.events import CoordinateEventDetector

PELVIS = (23, 24)


class LiveStrideCounter:
    """Heel strikes per side so far, from one side view's frames fed in time order."""

    def __init__(self, facing: str, window_s: float = 20.0, settle_s: float = 0.6):
        self.sign = 1.0 if facing == "right" else -1.0
        self.window_s, self.settle_s = window_s, settle_s
        self._t: list[float] = []
        self._xs: list[np.ndarray] = []  # per frame: x of left heel, left toe, right heel, right toe, pelvis
        self.heel_strikes_s: dict[str, list[float]] = {s: [] for s in SIDES}

    def add(self, t_s: float, lm: np.ndarray | None) -> None:
        """One frame's landmarks (33 × ≥2, px) or None when nobody was found."""
        row = np.full(5, np.nan)
        if lm is not None:
            row[:4] = [lm[HEEL["left"], 0], lm[TOE["left"], 0], lm[HEEL["right"], 0], lm[TOE["right"], 0]]
            row[4] = 0.5 * (lm[PELVIS[0], 0] + lm[PELVIS[1], 0])
        self._t.append(float(t_s))
        self._xs.append(row * self.sign)

    def update(self) -> dict[str, int]:
        """Count the heel strikes that have settled; returns the counts per side."""
        if len(self._t) < 2:
            return self.counts
        while self._t[-1] - self._t[0] > self.window_s:
            del self._t[0], self._xs[0]
        t, x = np.asarray(self._t), np.asarray(self._xs)
        for k, side in enumerate(SIDES):
            zeni = CoordinateEventDetector().detect(t, x[:, 2 * k], x[:, 2 * k + 1], x[:, 4])
            period = zeni.stride_period_s_
            if not np.isfinite(period):
                continue
            counted = self.heel_strikes_s[side]
            for hs in zeni.heel_strike_candidates_s_:
                if hs <= t[-1] - self.settle_s and (not counted or hs > counted[-1] + 0.5 * period):
                    counted.append(float(hs))
        return self.counts

    @property
    def counts(self) -> dict[str, int]:
        return {s: len(v) for s, v in self.heel_strikes_s.items()}

    @property
    def strides(self) -> dict[str, int]:
        """Complete strides (heel strike to heel strike) per side so far."""
        return {s: max(0, n - 1) for s, n in self.counts.items()}


class SessionStrides:
    """The stride tally of one recording session, fed from the database as frames arrive
    (shared by every tablet watching; call :meth:`catch_up` under one lock)."""

    CHUNK = 600  # frames decoded between two counts: 10 s at 60 fps, inside the window

    def __init__(self, session_id: int, view: str, facing: str):
        self.session_id, self.view = session_id, view
        self.counter = LiveStrideCounter(facing)
        self.last_idx = -1

    def catch_up(self, db) -> dict[str, int]:
        from rig.bus.payloads import PayloadError, decode_keypoints
        while True:
            rows = db.keypoints_after(self.session_id, self.view, self.last_idx, self.CHUNK)
            for idx, payload in rows:
                try:
                    frame = decode_keypoints(payload)
                except PayloadError:
                    continue
                self.counter.add(frame.t, frame.lm)
            if rows:
                self.last_idx = rows[-1][0]
                self.counter.update()
            if len(rows) < self.CHUNK:
                return self.counter.strides
