"""3D pipeline on the real-walking validation set: markers seen by the rig's four cameras
(lens distortion, 1.5 px noise), triangulated, filtered, 3D angles; against the markers
and against the lab's own angles (after the lab's sign convention and mean offset):
``.venv/bin/python benchmarks/bench_3d_real.py [--noise 1.5 --seed 0]``."""
from __future__ import annotations

import argparse

import numpy as np

from rig.threed.validation import MIN_LAB_CORRELATION, evaluate
from rig.validation import load_trials


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noise", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    results = [evaluate(t, args.noise, args.seed) for t in load_trials()]
    print("joint centres, median error mm (both sides):")
    for r in results:
        print(f"  {r.name:10s} " + "  ".join(f"{j} {v:.1f}" for j, v in r.joint_error_mm.items()))
    print("3D angles vs the same definition on the markers, RMSE deg (left / right):")
    names = sorted({k.split(" ", 1)[1] for r in results for k in r.angle_rmse_deg})
    for r in results:
        cells = [f"{n.replace('_deg', '')} {r.angle_rmse_deg['left ' + n]:.2f}/{r.angle_rmse_deg['right ' + n]:.2f}"
                 for n in names]
        print(f"  {r.name:10s} " + ", ".join(cells))
    print("rearfoot eversion, per-stride stance (10-45 %) mean error deg: " + ", ".join(
        f"{r.name} {np.max(r.eversion_stance_error_deg):.2f} max of {len(r.eversion_stance_error_deg)}"
        for r in results if r.eversion_stance_error_deg))
    print("vs the lab's own angles: RMSE deg after sign and offset (markers' own RMSE) [sign, offset, |r|]:")
    for r in results:
        for k, v in r.lab_rmse_deg.items():
            flag = "" if r.lab_corr[k] >= MIN_LAB_CORRELATION else "  not the same angle, not scored"
            print(f"  {r.name:10s} {k:28s} {v:5.2f} ({r.lab_rmse_markers_deg[k]:5.2f}) "
                  f"[{r.lab_sign[k]:+d}, {r.lab_offset_deg[k]:+6.1f}, {r.lab_corr[k]:.2f}]{flag}")


if __name__ == "__main__":
    main()
