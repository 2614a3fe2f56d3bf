"""Trigger indexing: which pulse of the armed train a frame belongs to, from its sensor
timestamp — pure logic. Hardware triggers make frame k the exposure of pulse k, so the
index is the timestamp's offset from the first pulse in periods; a gap of more than one
period between consecutive frames means triggers were missed, and they are counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TriggerIndexer:
    first_pulse_t: float
    rate_hz: float
    tolerance_periods: float = 0.3  # farther than this from a pulse instant: not ours
    missed: int = 0
    off_grid: int = 0
    last_index: int = -1
    _seen: int = field(default=0, repr=False)
    _last_t: float = field(default=0.0, repr=False)

    def index(self, t: float) -> int | None:
        """The trigger index of a frame exposed at host time ``t``; None if it fits no pulse.
        The first frame is placed from the first pulse's time; each later one from the last
        frame's, so a first-pulse time that the controller's clock sync refines as the
        session goes on (by more than a period, over half an hour) moves no frame."""
        if self.last_index < 0:
            phase = (t - self.first_pulse_t) * self.rate_hz
        else:
            phase = self.last_index + (t - self._last_t) * self.rate_hz
        k = round(phase)
        if k < 0 or abs(phase - k) > self.tolerance_periods or k <= self.last_index:
            self.off_grid += 1
            return None
        self.missed += k - self.last_index - 1
        self.last_index, self._last_t = k, t
        self._seen += 1
        return k

    def finish(self, pulses_sent: int) -> int:
        """At train end: pulses after the last frame were missed too. Returns total missed."""
        self.missed += max(pulses_sent - 1 - self.last_index, 0)
        return self.missed

    @property
    def captured(self) -> int:
        return self._seen
