"""Pose-model artefacts as deterministic functions of (seed, view, frame index).

Random numbers come in fixed blocks of frames, each from its own generator seeded with
(seed, kind, view, block), so any frame gets the same numbers whether it is rendered alone
or in a batch. Missing frames and label swaps come in runs: a run starts at frame j with
probability p and lasts L frames, L uniform in 1..2m-1 (mean m); with Poisson starts the
covered fraction is 1 - exp(-p m), so p = -ln(1 - fraction) / m.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

NOISE_BLOCK = 512
RUN_BLOCK = 4096
_VIEW_ID = {"left": 0, "right": 1, "rear": 2, "front": 3}
_KIND_MISSING, _KIND_SWAP = 0, 1


class Artifacts:
    """Noise (px), missing runs and swap runs for one walker; caches recent blocks."""

    def __init__(self, seed: int, cache_blocks: int = 64) -> None:
        self.seed = int(seed)
        self._cache: OrderedDict = OrderedDict()
        self._cache_max = cache_blocks

    def _block(self, key, make):
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        val = make()
        self._cache[key] = val
        if len(self._cache) > self._cache_max:
            self._cache.popitem(last=False)
        return val

    def _gather(self, idx, block, maker, use_cache):
        """Rows of per-frame random arrays for frame indices ``idx`` (int64, >= 0)."""
        b = idx // block
        ub = np.unique(b)
        if len(ub) == 1:
            arr = self._block(maker.key(ub[0]), lambda: maker(ub[0])) if use_cache else maker(ub[0])
            return arr[idx - ub[0] * block]
        if len(ub) == ub[-1] - ub[0] + 1:  # contiguous blocks: one concatenation
            parts = [self._block(maker.key(k), lambda k=k: maker(k)) if use_cache else maker(k) for k in ub]
            return np.concatenate(parts)[idx - ub[0] * block]
        out = None
        for k in ub:
            arr = self._block(maker.key(k), lambda k=k: maker(k)) if use_cache else maker(k)
            if out is None:
                out = np.empty((len(idx),) + arr.shape[1:], arr.dtype)
            m = b == k
            out[m] = arr[idx[m] - k * block]
        return out

    def noise(self, view: str, idx: np.ndarray) -> np.ndarray:
        """(n, 33, 2) standard normal float32 for x and y."""
        vid = _VIEW_ID[view]

        class Maker:
            def key(_, k):
                return ("noise", vid, int(k))

            def __call__(_, k):
                rng = np.random.default_rng([self.seed, 32, vid, int(k)])
                return rng.standard_normal((NOISE_BLOCK, 33, 2), dtype=np.float32)

        return self._gather(idx, NOISE_BLOCK, Maker(), use_cache=len(idx) <= 4 * NOISE_BLOCK)

    def _uniforms(self, view: str, kind: int, idx: np.ndarray) -> np.ndarray:
        vid = _VIEW_ID[view]

        class Maker:
            def key(_, k):
                return ("runs", kind, vid, int(k))

            def __call__(_, k):
                return np.random.default_rng([self.seed, 31, kind, vid, int(k)]).random((RUN_BLOCK, 2))

        return self._gather(idx, RUN_BLOCK, Maker(), use_cache=len(idx) <= 4 * RUN_BLOCK)

    def runs(self, view: str, kind: int, idx: np.ndarray, fraction: float, mean_len: int) -> np.ndarray:
        """Boolean (n,): frame ``idx`` lies in a run (missing or swapped)."""
        n = len(idx)
        if fraction <= 0 or n == 0:
            return np.zeros(n, bool)
        m = max(int(mean_len), 1)
        lmax = 2 * m - 1
        p = -np.log1p(-min(fraction, 0.95)) / m
        lo = max(int(idx.min()) - lmax + 1, 0)
        hi = int(idx.max()) + 1
        if hi - lo <= 8 * n + 4 * lmax:  # dense request: sweep the range once
            j = np.arange(lo, hi)
            u = self._uniforms(view, kind, j)
            start = u[:, 0] < p
            js = j[start]
            ends = np.minimum(js + 1 + (u[start, 1] * lmax).astype(np.int64), hi)
            d = np.bincount(js - lo, minlength=hi - lo + 1)[: hi - lo + 1]
            d = d - np.bincount(ends - lo, minlength=hi - lo + 1)[: hi - lo + 1]
            covered = np.cumsum(d)[:-1] > 0
            return covered[idx - lo]
        j = idx[:, None] - np.arange(lmax)[None, :]  # sparse request: look back per frame
        valid = j >= 0
        u = self._uniforms(view, kind, np.where(valid, j, 0).ravel()).reshape(n, lmax, 2)
        length = 1 + (u[..., 1] * lmax).astype(np.int64)
        hit = valid & (u[..., 0] < p) & (np.arange(lmax)[None, :] < length)
        return hit.any(axis=1)

    def missing(self, view, idx, fraction, mean_len):
        return self.runs(view, _KIND_MISSING, idx, fraction, mean_len)

    def swapped(self, view, idx, fraction, mean_len):
        return self.runs(view, _KIND_SWAP, idx, fraction, mean_len)
