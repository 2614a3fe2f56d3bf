"""Calibration accuracy on simulated ChArUco footage (rig cameras with lens distortion,
noise σ 3 grey levels, blur σ 0.8 px): per camera, position and orientation error against
the true camera, focal length and reprojection RMS, and the solve time:
``.venv/bin/python benchmarks/bench_calibration.py [--closeups 24 --belt-poses 72 --seed 0]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from rig.calibration.board import BoardDetector, BoardSpec
from rig.calibration.simulate import EXAMPLE_DISTORTION, footage
from rig.calibration.solve import RigCalibrator
from rig.sim._camera import default_cameras
from rig.threed.camera import CameraModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--closeups", type=int, default=24)
    ap.add_argument("--belt-poses", type=int, default=72)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    spec = BoardSpec()
    cams = {k: CameraModel.from_sim(c, dist=EXAMPLE_DISTORTION[k]) for k, c in default_cameras().items()}
    det = BoardDetector(spec)
    t0 = time.process_time()
    frames = list(footage(spec, cams, np.random.default_rng(args.seed), args.closeups, args.belt_poses))
    found = [d for d in (det.detect(img, v, i) for v, i, img in frames) if d is not None]
    t1 = time.process_time()
    res = RigCalibrator(spec, {k: (c.width_px, c.height_px) for k, c in cams.items()}).solve(found)
    t2 = time.process_time()
    print(f"{len(frames)} frames rendered, board found in {len(found)}; render+detect {t1 - t0:.1f} s CPU, "
          f"solve {t2 - t1:.1f} s CPU; belt plane from {res.n_belt_frames} frames")
    print("camera  position error mm  orientation error deg  fx (true 1300)  reprojection px")
    for v, truth in cams.items():
        est = res.cameras[v]
        pos = 1000 * np.linalg.norm(est.position_m - truth.position_m)
        rot = np.degrees(np.arccos(np.clip((np.trace(est.R @ truth.R.T) - 1) / 2, -1, 1)))
        print(f"{v:6s}  {pos:17.2f}  {rot:21.3f}  {est.fx:14.1f}  {res.rms_px[v]:15.3f}")


if __name__ == "__main__":
    main()
