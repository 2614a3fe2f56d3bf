"""3D pipeline on the real-walking validation set: markers seen by the rig's four cameras
(lens distortion, 1.5 px noise), triangulated, filtered, 3D angles; against the markers,
against the lab's own model where the recording carries it (raw: no sign or offset fitted),
rearfoot eversion on the walker (the real markers cannot define it), and 3D step length
and width from analyze_tracks on the rendered trials against the markers:
``.venv/bin/python benchmarks/bench_3d_real.py [--noise 1.5 --seed 0]``."""
from __future__ import annotations

import argparse

import numpy as np

from rig.threed.validation import LAB_MODELS, davis_sensitivity, evaluate, step_check, walker_rearfoot
from rig.validation import load_trials


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noise", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    trials = load_trials()
    results = [evaluate(t, args.noise, args.seed) for t in trials]
    print("joint centres, median error mm (both sides):")
    for r in results:
        print(f"  {r.name:10s} " + "  ".join(f"{j} {v:.1f}" for j, v in r.joint_error_mm.items()))
    print("3D angles vs the same definition on the markers, RMSE deg (left / right):")
    names = sorted({k.split(" ", 1)[1] for r in results for k in r.angle_rmse_deg})
    for r in results:
        cells = [f"{n.replace('_deg', '')} {r.angle_rmse_deg['left ' + n]:.2f}/{r.angle_rmse_deg['right ' + n]:.2f}"
                 for n in names if "left " + n in r.angle_rmse_deg]
        print(f"  {r.name:10s} " + ", ".join(cells))
    print("vs the lab's own model, raw RMSE deg (the markers' own RMSE) [mean ours - lab]:")
    for r in results:
        for k, v in r.lab_rmse_deg.items():
            print(f"  {r.name:10s} {k:28s} {v:5.2f} ({r.lab_rmse_markers_deg[k]:5.2f}) [{r.lab_bias_deg[k]:+5.1f}]"
                  f"  {'within 3' if v <= 3.0 else 'NOT within 3'}")
    print(f"  lab models: {LAB_MODELS}")
    print("  sensitivity, not a score: the markers with Davis hip centres for an assumed pelvic depth "
          "(RMSE [mean, SD of the difference]):")
    for t in trials:
        for depth, row in davis_sensitivity(t).items():
            print(f"    {t.name} depth {1000 * depth:.0f} mm: " + ", ".join(
                f"{k.replace('_flexion_deg', '')} {v[0]:.1f} [{v[1]:+.1f}, {v[2]:.1f}]" for k, v in row.items()))
    print("vs the file's gaitkit three-point angles (same formula on our points), RMSE deg:")
    for r in results:
        if r.file_angle_rmse_deg:
            print(f"  {r.name:10s} " + ", ".join(f"{k} {v:.2f}" for k, v in r.file_angle_rmse_deg.items()))
    print("rearfoot eversion: real trials excluded:")
    for r in results:
        print(f"  {r.name:10s} {r.rearfoot_excluded or 'defined'}")
    for seed in range(3):
        c = walker_rearfoot({"left": 12.0, "right": 4.0}, noise_px=args.noise, seed=seed)
        print(f"  walker seed {seed}: stance per-frame RMSE L/R {c.per_frame_rmse_deg['left']:.2f}/"
              f"{c.per_frame_rmse_deg['right']:.2f} deg; per-stride stance mean error max "
              f"{max(c.per_stride_error_deg['left']):.2f}/{max(c.per_stride_error_deg['right']):.2f}, mean "
              f"{np.mean(c.per_stride_error_deg['left']):.2f}/{np.mean(c.per_stride_error_deg['right']):.2f} deg "
              f"over {len(c.per_stride_error_deg['left'])}/{len(c.per_stride_error_deg['right'])} strides")
    print("3D step length and width (analyze_tracks at 100 fps, calibrated) vs the markers at the reference events:")
    for t in trials:
        s = step_check(t, noise_px=args.noise, seed=args.seed)
        print(f"  {t.name:10s} {s}")


if __name__ == "__main__":
    main()
