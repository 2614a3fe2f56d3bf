"""Gait-event schedule: heel strikes and toe-offs per foot, generated lazily and
deterministically from the seed, chunk by chunk, for as long a horizon as is asked for.

Steps alternate right, left, right, ...; step ``k`` ends with the heel strike ``E[k]``.
Every step duration is its nominal duration times ``1 + sigma * eps`` (``eps`` standard
normal, clipped at 3); with independent steps the stride (two steps) has a CV of
``sigma / sqrt(2)``, so ``sigma = sqrt(2) * CV`` gives the asked stride-time CV (real
walkers show step CV a little above stride CV, e.g. Hausdorff 2005).
"""
from __future__ import annotations

import numpy as np

CHUNK_STEPS = 256
_RIGHT, _LEFT = 0, 1  # step k is a right step when k is even


class Schedule:
    """Heel strikes ``hs[side]``, toe-offs ``to[side]`` (seconds), landing positions.

    ``hs[side][i]`` starts stride ``i`` of that foot; ``to[side][i]`` ends its stance.
    ``land_x[side][i]`` is the heel's x on the treadmill frame at that heel strike.
    """

    def __init__(self, params, seed: int, pelvis_drift) -> None:
        self.p = params
        self.seed = int(seed)
        self._drift = pelvis_drift  # callable t -> pelvis x drift (m), decides landings
        t_stride = 120.0 / params.cadence_steps_per_min
        a = params.step_time_asymmetry_pct / 200.0
        # nominal step durations [right step, left step]; right step ends with a right HS
        self.step_nominal_s = np.array([t_stride / 2 * (1 + a), t_stride / 2 * (1 - a)])
        d = params.stance_pct_asymmetry / 2.0
        self.stance_frac = {"right": (params.stance_pct + d) / 100, "left": (params.stance_pct - d) / 100}
        self.sigma = np.sqrt(2.0) * params.stride_time_cv_pct / 100.0
        u0 = np.random.default_rng([self.seed, 11]).random()
        self._t_start = -(3.0 + u0) * t_stride  # first right HS: walking is steady at t = 0
        self._e = np.empty(0)  # all heel strikes in order
        self._st = np.empty(0)  # stance fraction of the stride that starts at E[k]
        self._dx = np.empty(0)  # landing x jitter (m)
        self._dy = np.empty(0)  # landing y jitter (m)
        self._n_chunks = 0
        self.hs, self.to, self.land_x, self.land_y = {}, {}, {}, {}

    def ensure(self, t_s: float) -> None:
        """Make sure the schedule covers every time up to ``t_s`` (plus a margin)."""
        while not (len(self._e) and self._e[-6] > t_s):
            self._add_chunk()
        if not self.hs:
            self._split()

    def _add_chunk(self) -> None:
        rng = np.random.default_rng([self.seed, 12, self._n_chunks])
        eps = np.clip(rng.standard_normal(CHUNK_STEPS), -3, 3)
        k = np.arange(CHUNK_STEPS) + self._n_chunks * CHUNK_STEPS  # even k: right step
        nominal = self.step_nominal_s[k % 2]
        steps = nominal * (1 + self.sigma * eps)
        start = self._e[-1] if len(self._e) else self._t_start - steps[0]
        e = start + np.cumsum(steps)
        frac = np.where(k % 2 == _RIGHT, self.stance_frac["right"], self.stance_frac["left"])
        jitter = self.p.stride_time_cv_pct / 2.0  # stance-% and placement jitter scale with CV
        st = frac + 0.002 * jitter * np.clip(rng.standard_normal(CHUNK_STEPS), -3, 3)
        dx = 0.005 * jitter * np.clip(rng.standard_normal(CHUNK_STEPS), -3, 3)
        dy = 0.004 * jitter * np.clip(rng.standard_normal(CHUNK_STEPS), -3, 3)
        self._e = np.concatenate([self._e, e])
        self._st = np.concatenate([self._st, st])
        self._dx = np.concatenate([self._dx, dx])
        self._dy = np.concatenate([self._dy, dy])
        self._n_chunks += 1
        self.hs = {}

    def _split(self) -> None:
        """Per-foot arrays; the last stride of each foot has no toe-off and is dropped."""
        e, n = self._e, len(self._e)
        step_len = self.p.belt_speed_m_s * np.mean(self.step_nominal_s)
        for side, first in (("right", _RIGHT), ("left", _LEFT)):
            k = np.arange(first, n - 2, 2)
            self.hs[side] = e[k]
            self.to[side] = e[k] + self._st[k] * (e[k + 2] - e[k])
            # heel lands ahead of the hip joint by ~0.38 step length (see docs/walker.md)
            self.land_x[side] = 0.38 * step_len + self._drift(e[k]) + self._dx[k]
            self.land_y[side] = self._dy[k]

    @property
    def all_hs(self) -> np.ndarray:
        return self._e

    def stride_index(self, side: str, t: np.ndarray) -> np.ndarray:
        """Index ``i`` of the stride with ``hs[i] <= t < hs[i+1]``."""
        return np.searchsorted(self.hs[side], t, side="right") - 1
