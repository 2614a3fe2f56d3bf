"""What a simulated camera films: the simulated walker, seen from one view."""
from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from rig.sim.walker import SimulatedWalker, WalkerParams

log = logging.getLogger(__name__)


class WalkerScene:
    """Landmarks of pulse k at a train rate; one walker per rate, since it is built for an fps.

    ``script``: a TOML file with a ``[walker]`` table (the knobs of ``walker`` in the node's
    config) read again by :meth:`new_train` — how ``gaitrig demo`` lets its patient change
    shoes between two walks without restarting the cameras. A file that cannot be read
    leaves the walker as it was (logged)."""

    def __init__(self, view: str, params: WalkerParams, seed: int = 0, script: Path | None = None):
        self.view, self.params, self.seed, self.script = view, params, seed, script
        self._walkers: dict[float, SimulatedWalker] = {}

    def walker(self, rate_hz: float) -> SimulatedWalker:
        if rate_hz not in self._walkers:
            self._walkers[rate_hz] = SimulatedWalker(self.params, fps=rate_hz, seed=self.seed)
        return self._walkers[rate_hz]

    def new_train(self) -> None:
        """A new walk: take the script's knobs, if there is a script."""
        if self.script is None:
            return
        from rig.config import WalkerSettings
        try:
            with open(self.script, "rb") as f:
                settings = WalkerSettings.model_validate(tomllib.load(f).get("walker", {}))
            self.params, self.seed = settings.params(), settings.seed
        except (OSError, tomllib.TOMLDecodeError, ValidationError, ValueError) as e:
            log.error("walker script %s not read, the walker stays as it was: %s", self.script,
                      str(e).splitlines()[0])
            return
        self._walkers.clear()

    def __call__(self, rate_hz: float, index: int) -> np.ndarray | None:
        lm = self.walker(rate_hz).landmarks(self.view, np.array([index]))[0]
        return None if np.isnan(lm[0, 0]) else lm
