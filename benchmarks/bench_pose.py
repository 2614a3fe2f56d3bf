"""Our BlazePose pipeline vs the reference (mediapipe 0.10.14 ``solutions.pose``,
model_complexity=1, smooth_landmarks=False) on the four pose2sim Demo_SinglePerson videos.

    .venv/bin/python benchmarks/bench_pose.py [--repeats 2] [--threads 2]

Throughput: each video is decoded once into memory; both pipelines then process the same
BGR frames in one process, alternating in blocks of 10 frames (so background load hits both
alike), construction excluded and the first frame (warm-up) included for both; the median
over ``--repeats`` passes is reported. Ours is timed from the BGR frame to landmarks; the reference is
timed on ``pose.process(rgb)`` only, its BGR→RGB conversion done beforehand (in its favour).
Memory: peak RSS (VmHWM) of a separate process that streams the four videos through our
pipeline the way ``gaitrig infer`` and a node do (decode thread + pipeline), and likewise
for the reference — the in-memory frames of this process would otherwise dominate.
Needs ``gaitrig models fetch`` (models + samples) and mediapipe (dev extra).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_models.fetch import sample_path  # noqa: E402
from edge_models.registry import SAMPLES  # noqa: E402
from edge_models.video import read_frames  # noqa: E402

GOAL_SPEEDUP = 1.5
GOAL_MEDIAN_TORSO_PCT = 2.0
GOAL_RSS_MB = 300.0


def run_interleaved(frames: list[np.ndarray], threads: int, block: int = 10,
                    ours_first: bool = True) -> tuple[float, list, float, list]:
    """Both pipelines over the same frames, alternating in blocks of ``block`` frames so both
    see the same background load (other processes share these 2 cores). Returns seconds and
    landmarks of ours, then of the reference."""
    import mediapipe as mp
    from edge_models.pose import PosePipeline
    h, w = frames[0].shape[:2]
    pipe = PosePipeline(threads=threads)
    rgb = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]
    ours, results = [], []
    t_ours = t_ref = 0.0
    with mp.solutions.pose.Pose(model_complexity=1, smooth_landmarks=False) as pose:
        for start in range(0, len(frames), block):
            for who in (("ours", "ref") if ours_first else ("ref", "ours")):
                t0 = time.perf_counter()
                if who == "ours":
                    ours.extend(pipe.process(f) for f in frames[start:start + block])
                    t_ours += time.perf_counter() - t0
                else:
                    results.extend(pose.process(im) for im in rgb[start:start + block])
                    t_ref += time.perf_counter() - t0
    ref = [None if r.pose_landmarks is None else
           np.array([[p.x * w, p.y * h] for p in r.pose_landmarks.landmark]) for r in results]
    return t_ours, ours, t_ref, ref


def torso_px(lm: np.ndarray) -> float:
    return float(np.linalg.norm((lm[11, :2] + lm[12, :2]) / 2 - (lm[23, :2] + lm[24, :2]) / 2))


def distances_pct(ours: list, ref: list) -> np.ndarray:
    d = [100 * np.linalg.norm(a[:, :2] - b[:, :2], axis=1) / torso_px(b)
         for a, b in zip(ours, ref) if a is not None and b is not None]
    return np.concatenate(d) if d else np.array([np.nan])


def peak_rss_mb() -> float:
    """This process's peak resident set: VmHWM, which a fresh exec starts from zero
    (ru_maxrss would carry over the forking parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(kind: str, threads: int) -> None:
    """Stream all four videos through one pipeline; print frames, seconds and peak RSS."""
    from edge_models.video import decoded_frames
    n = found = 0
    t0 = time.perf_counter()
    if kind == "ours":
        from edge_models.pose import PosePipeline
        pipe = PosePipeline(threads=threads)
        for name in SAMPLES:
            pipe.reset()
            cap = cv2.VideoCapture(str(sample_path(name)))
            for frame in decoded_frames(cap):
                n += 1
                found += pipe.process(frame) is not None
    else:
        import mediapipe as mp
        for name in SAMPLES:
            with mp.solutions.pose.Pose(model_complexity=1, smooth_landmarks=False) as pose:
                cap = cv2.VideoCapture(str(sample_path(name)))
                for frame in decoded_frames(cap):
                    n += 1
                    found += pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).pose_landmarks is not None
    elapsed = time.perf_counter() - t0
    rss_mb = peak_rss_mb()
    print(json.dumps({"frames": n, "found": found, "seconds": elapsed, "peak_rss_mb": rss_mb}))


def measure_child(kind: str, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="timed passes per video (median)")
    ap.add_argument("--threads", type=int, default=2, help="TFLite threads for our pipeline")
    ap.add_argument("--child", choices=["ours", "reference"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.threads)
        return 0

    rows = []
    all_d = []
    tot = {"n": 0, "ours_s": 0.0, "ref_s": 0.0, "ours_found": 0, "ref_found": 0}
    for k, name in enumerate(SAMPLES):
        frames = read_frames(sample_path(name))
        ours_t, ref_t = [], []
        for rep in range(args.repeats):
            t_o, ours, t_r, ref = run_interleaved(frames, args.threads,
                                                  ours_first=(k + rep) % 2 == 0)
            ours_t.append(t_o)
            ref_t.append(t_r)
        t_o, t_r = statistics.median(ours_t), statistics.median(ref_t)
        d = distances_pct(ours, ref)
        all_d.append(d)
        f_o, f_r = sum(x is not None for x in ours), sum(x is not None for x in ref)
        rows.append((name, len(frames), len(frames) / t_o, len(frames) / t_r, t_r / t_o,
                     f_o, f_r, float(np.median(d))))
        tot["n"] += len(frames)
        tot["ours_s"] += t_o
        tot["ref_s"] += t_r
        tot["ours_found"] += f_o
        tot["ref_found"] += f_r
        del frames

    print(f"{'video':10s} {'frames':>6s} {'ours fps':>9s} {'ref fps':>8s} {'ratio':>6s} "
          f"{'ours found':>10s} {'ref found':>9s} {'median %torso':>13s}")
    for name, n, fo, fr, ratio, f_o, f_r, med in rows:
        print(f"{name:10s} {n:6d} {fo:9.1f} {fr:8.1f} {ratio:6.2f} {f_o:10d} {f_r:9d} {med:13.3f}")
    fps_o, fps_r = tot["n"] / tot["ours_s"], tot["n"] / tot["ref_s"]
    ratio = fps_o / fps_r
    med = float(np.median(np.concatenate(all_d)))
    n = tot["n"]
    print(f"{'all':10s} {n:6d} {fps_o:9.1f} {fps_r:8.1f} {ratio:6.2f} "
          f"{tot['ours_found']:10d} {tot['ref_found']:9d} {med:13.3f}")

    mem_o = measure_child("ours", args.threads)
    mem_r = measure_child("reference", args.threads)
    print(f"\npeak RSS, streaming all videos in a fresh process (decode thread + pipeline):")
    print(f"  ours      {mem_o['peak_rss_mb']:6.0f} MB  ({mem_o['frames'] / mem_o['seconds']:.1f} fps incl. decode, "
          f"person in {mem_o['found']}/{mem_o['frames']})")
    print(f"  reference {mem_r['peak_rss_mb']:6.0f} MB  ({mem_r['frames'] / mem_r['seconds']:.1f} fps incl. decode, "
          f"person in {mem_r['found']}/{mem_r['frames']})")

    goals = [
        (f"throughput ≥ {GOAL_SPEEDUP}× reference", ratio >= GOAL_SPEEDUP, f"{ratio:.2f}×"),
        ("person found in ≥ as many frames", tot["ours_found"] >= tot["ref_found"],
         f"{tot['ours_found']} vs {tot['ref_found']} of {n}"),
        (f"median distance ≤ {GOAL_MEDIAN_TORSO_PCT} % torso", med <= GOAL_MEDIAN_TORSO_PCT, f"{med:.3f} %"),
        (f"node memory ≤ {GOAL_RSS_MB:.0f} MB", mem_o["peak_rss_mb"] <= GOAL_RSS_MB,
         f"{mem_o['peak_rss_mb']:.0f} MB"),
    ]
    print()
    for label, ok, value in goals:
        print(f"  [{'PASS' if ok else 'FAIL'}] {label}: {value}")
    return 0 if all(ok for _, ok, _ in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
