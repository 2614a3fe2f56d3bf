"""Render speed of the simulated walker: a 10-minute, four-view, 120 fps session
(72,000 frames per view, 288,000 frames) in one batch, and single frames as a live
simulated camera node asks for them. Run: ``.venv/bin/python benchmarks/bench_walker.py``.
"""
from __future__ import annotations

import time

import numpy as np

from rig.sim.walker import SimulatedWalker, WalkerParams

PARAMS = WalkerParams(noise_px=2.0, missing_fraction=0.05, swap_fraction=0.05,
                      stance_pct_asymmetry=4.0, pelvic_obliquity_deg=2.0)


def bench_batch(duration_s: float = 600.0, fps: float = 120.0, repeats: int = 3) -> float:
    times = []
    for r in range(repeats):
        w = SimulatedWalker(PARAMS, fps=fps, seed=r)
        idx = np.arange(int(duration_s * fps))
        t0 = time.perf_counter()
        out = w.render(idx)
        times.append(time.perf_counter() - t0)
        assert all(v.shape == (len(idx), 33, 4) for v in out.values())
        del out
    return min(times)


def bench_single(n: int = 2000, fps: float = 120.0) -> float:
    w = SimulatedWalker(PARAMS, fps=fps, seed=0)
    w.frame("left", 0)
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        w.frame("left", i)
    return (time.perf_counter() - t0) / n


def main() -> None:
    batch = bench_batch()
    single = bench_single()
    frames = 4 * 600 * 120
    print(f"walker batch: 10 min x 4 views x 120 fps ({frames} frames) in {batch:.2f} s "
          f"(best of 3; {frames / batch / 1e3:.0f} k frames/s, {600 / batch:.0f}x real time)")
    print(f"walker single frame (one view): {single * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
