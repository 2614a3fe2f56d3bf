"""Triangulation speed and accuracy on a 10-minute, four-view, 120 fps session.

The simulated walker's 3D landmarks (rig/sim) are seen by the rig's four cameras with
lens distortion and 1.5 px noise; one view is corrupted by 80 px on 2 % of the landmarks
(the gate must drop it). Times undistortion + triangulation + outlier gate, and the
Savitzky–Golay filter, on 4 × 72 000 frames × 33 landmarks:
``.venv/bin/python benchmarks/bench_triangulate.py`` (``--minutes 1`` for a quick run).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from rig.sim.walker import SimulatedWalker, WalkerParams
from rig.threed.smoothing import SavitzkyGolaySmoother
from rig.threed.triangulate import Triangulator
from rig.threed.validation import rig_cameras

FPS = 120.0


def session(minutes: float, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """World landmarks (n, 33, 3) and each view's (n, 33, 4) observations; one minute of
    walking repeated (the walker's own generator would dominate the set-up time)."""
    walker = SimulatedWalker(WalkerParams(), fps=FPS)
    one = walker.world(np.arange(int(60 * FPS)))
    world = np.concatenate([one] * int(np.ceil(minutes)))[: int(minutes * 60 * FPS)]
    rng = np.random.default_rng(seed)
    views = {}
    for name, cam in rig_cameras().items():
        lm = np.empty(world.shape[:2] + (4,))
        lm[..., :2] = cam.project(world) + rng.normal(0.0, 1.5, world.shape[:2] + (2,))
        lm[..., 2] = 0.0
        lm[..., 3] = 0.9
        views[name] = lm
    bad = rng.random(world.shape[:2]) < 0.02
    views["left"][bad, :2] += 80.0
    return world, views


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    world, views = session(args.minutes)
    cams = rig_cameras()
    tri = Triangulator(cams)
    for c in cams.values():  # the undistortion tables are built once per calibration
        c.undistort(np.zeros(1), np.zeros(1))
    smoother = SavitzkyGolaySmoother()
    best = best_cpu = best_f = float("inf")
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        res = tri.triangulate(views)
        t1, c1 = time.perf_counter(), time.process_time()
        smooth = smoother.smooth(res.points_m, FPS)
        t2 = time.perf_counter()
        best, best_cpu, best_f = min(best, t1 - t0), min(best_cpu, c1 - c0), min(best_f, t2 - t1)
    err_mm = np.linalg.norm(res.points_m - world, axis=-1) * 1000
    err_s_mm = np.linalg.norm(smooth - world, axis=-1) * 1000
    n = world.shape[0]
    print(f"session: {args.minutes:g} min, 4 views, {FPS:g} fps: {n} trigger indices, {4 * n} view frames "
          f"x 33 landmarks ({4 * n * 33 / 1e6:.1f} M observations)")
    print(f"triangulate (undistort + DLT + gate): {best:.2f} s wall (best of {args.repeat}), {best_cpu:.2f} s CPU")
    print(f"Savitzky-Golay filter: {best_f:.2f} s; total {best + best_f:.2f} s (goal <= 5 s)")
    print(f"3D error, raw: median {np.nanmedian(err_mm):.1f} mm, p95 {np.nanpercentile(err_mm, 95):.1f} mm; "
          f"filtered: median {np.nanmedian(err_s_mm):.1f} mm, p95 {np.nanpercentile(err_s_mm, 95):.1f} mm")
    print(f"outlier views dropped: {res.views_dropped} (injected {int(0.02 * n * 33)}), "
          f"landmarks rejected: {res.points_rejected}, missing: {int(np.isnan(res.points_m[..., 0]).sum())}")


if __name__ == "__main__":
    main()
