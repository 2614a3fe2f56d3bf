"""What a simulated camera films: the simulated walker, seen from one view."""
from __future__ import annotations

import numpy as np

from rig.sim.walker import SimulatedWalker, WalkerParams


class WalkerScene:
    """Landmarks of pulse k at a train rate; one walker per rate, since it is built for an fps."""

    def __init__(self, view: str, params: WalkerParams, seed: int = 0):
        self.view, self.params, self.seed = view, params, seed
        self._walkers: dict[float, SimulatedWalker] = {}

    def walker(self, rate_hz: float) -> SimulatedWalker:
        if rate_hz not in self._walkers:
            self._walkers[rate_hz] = SimulatedWalker(self.params, fps=rate_hz, seed=self.seed)
        return self._walkers[rate_hz]

    def __call__(self, rate_hz: float, index: int) -> np.ndarray | None:
        lm = self.walker(rate_hz).landmarks(self.view, np.array([index]))[0]
        return None if np.isnan(lm[0, 0]) else lm
