"""The camera node on keyframes + optical flow vs the landmark model on every frame.

    .venv/bin/python benchmarks/bench_node_keyframes.py [--intervals 4,8] [--walk-s 30]
    .venv/bin/python benchmarks/bench_node_keyframes.py --throughput-only   # part 1 alone (~30 s)

1. Throughput on this machine: the same in-memory BGR frames of the four pose2sim videos
   through the node's estimator with interval 1 (every frame) and with each keyframe
   interval, alternating in blocks of 40 frames so background load hits both alike; one
   TFLite thread (a node's core); by the wall clock and by the thread's CPU time (the
   fairer one on a loaded machine). Goal: ≥ 3× the every-frame rate. Each frame comes with
   its luma plane (gray, half size), made beforehand as the frames are decoded beforehand:
   on a Pi the ISP makes it (picamera2's lores stream), and the flow reads it.
2. Accuracy against inference on every frame, same footage (pose2sim cam01-04 at 60 fps and
   the Sports2D walker at 30 fps): distance of the gait points on tracked frames, in % of
   the torso length (median, 95th percentile); goal median ≤ 1.5 %. With it, as context:
   the keyframes' own distance (both streams ran the model on that frame, with crops a
   few px apart), the model's output change when its crop moves 2/4/8 px, and tracked
   frames against a lightly smoothed reference. Where the error is: per gait point,
   the frames over 10 %, the reference's own left/right flips, and straight lines between
   the same keyframes in place of the flow; and the floor the reference's own frame-to-
   frame noise sets (what the true path would score, and a path on model keyframes as
   noisy as the reference with perfect flow between). A tracked frame's cost in ms.
3. Gait events: Zeni coordinate-method heel strikes and toe-offs of both feet from the
   tracked stream vs from every-frame inference, on the Sports2D walker (the only real
   walking footage here with whole strides: pose2sim's 100-frame clips hold less than two,
   too few for the method's stride period) and on the frames where she is wholly in the
   picture: share within one frame, raw and after the gait engine's left/right repair, the
   missed ones named, each with how far apart the two streams' model runs put its point on
   the keyframe nearest it; and as earlier runs counted them (every frame, frames 20-59).
4. Pi-speed rig: public CLI (real Mosquitto, simulated treadmill + bridge + coordinator
   in this process, ``gaitrig node`` as its own process on cam01 at 120 Hz with the
   interpreter slowed to 40 ms per detector and 25 ms per landmark run, one thread):
   frames stored, share that needed the disk spool, node peak RSS (and by mapping at the
   peak, with its slope: a leak shows as one), trigger-to-publish latency (all frames, and
   those published while the belt ran), frames stored without landmarks (just after the
   stand-in footage loops, and elsewhere: goal none). Everything shares
   this machine's 2 cores with whatever else runs. ``pi120`` decodes the clip on the node's
   CPU (12 ms a frame here, more than the 8.3 ms period: the camera itself falls behind and
   paces the node, so fewer frames spool but all arrive late); ``pi120mem`` serves it from
   memory, costing what a Pi's camera costs, so frames arrive on time and the spool share
   is the node's own (its RSS then holds the clip). The memory check of a 10-minute walk:
   ``--skip-offline --walk-s 600 --crop-spool-mb 12000 --max-wait-s 240`` (on a loaded
   machine the node spools most frames; the default 4000 MB disk bound holds ~5 minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_models.fetch import sample_path  # noqa: E402
from edge_models.pose import PosePipeline  # noqa: E402
from edge_models.pose.keyframes import KeyframeEstimator  # noqa: E402
from edge_models.pose.person_select import torso_length_px  # noqa: E402
from edge_models.pose.tracking import GAIT_POINTS, luma_of  # noqa: E402
from edge_models.registry import SAMPLES, SPORTS2D_WALKER  # noqa: E402
from edge_models.video import read_frames  # noqa: E402

GOAL_SPEEDUP = 3.0
GOAL_MEDIAN_TORSO_PCT = 1.5
GOAL_RSS_MB = 300.0
WALKER_FRAMES = 165  # the Sports2D demo's first person (jumping jacks, facing the camera)
WALK_SEGMENT = (140, 204)  # then a woman walks across to the image's left (side view, 30 fps)
OLD_WALK_EVENTS = (20, 60)  # the window earlier runs used: she is partly out of the picture from frame 47
WALKER_NEAR_SIDE = "left"  # her left leg faces the camera (visibility 0.98 vs 0.84, smaller z)
PI5_MS = (40.0, 25.0)
_G = np.array(GAIT_POINTS)


def estimator(interval: int, threads: int) -> tuple[KeyframeEstimator, PosePipeline]:
    """The node's estimator (as rig.node.stages builds it) on a fresh pipeline."""
    pipe = PosePipeline(threads=threads)
    return KeyframeEstimator.on(pipe, interval), pipe


def run_stream(est: KeyframeEstimator, frames: list, fps: float, start: int = 0, lumas: list | None = None) -> list:
    """The frames through the estimator with their luma planes (what a Pi's ISP hands the
    node with each frame: made beforehand here, as the frames are decoded beforehand)."""
    lumas = lumas if lumas is not None else [luma_of(f) for f in frames]
    out = []
    for k, (f, luma) in enumerate(zip(frames, lumas)):
        out += est.push(start + k, (start + k) / fps, f, luma)
    return out


def throughput(videos: dict[str, list], intervals: list[int], block: int = 40) -> dict[int, tuple[float, float]]:
    """Frames per second of each interval over all videos, interleaved in blocks: by the
    wall clock and by this thread's CPU time (one TFLite thread runs on the caller's; on
    a loaded machine the CPU figure leaves out the time other processes took the core)."""
    ests, pipes = {}, {}
    for n in [1, *intervals]:
        ests[n], pipes[n] = estimator(n, threads=1)
    seconds = {n: [0.0, 0.0] for n in ests}
    total = 0
    for frames in videos.values():
        lumas = [luma_of(f) for f in frames]
        for n, est in ests.items():  # a new sequence, as the node starts one (rig.node.stages)
            est.reset()
            pipes[n].reset()
        for start in range(0, len(frames), block):
            chunk, chunk_lumas = frames[start:start + block], lumas[start:start + block]
            for n, est in ests.items():
                t0, c0 = time.perf_counter(), time.thread_time()
                run_stream(est, chunk, 60.0, start, chunk_lumas)
                if start + block >= len(frames):
                    est.flush()
                seconds[n][0] += time.perf_counter() - t0
                seconds[n][1] += time.thread_time() - c0
            total += len(chunk)
    return {n: (total / wall, total / cpu) for n, (wall, cpu) in seconds.items()}


class Accuracy(NamedTuple):
    """One clip through both streams; distances are the gait points' in % of torso."""

    ref: list  # every-frame landmarks (None: nobody)
    ours: list  # the keyframe stream's landmarks
    keyframes: list[int]  # frames where the keyframe stream ran the model and found the person
    tracked: np.ndarray  # tracked frames
    keyframe: np.ndarray  # keyframes, where both ran the model: the model's sensitivity to its crop
    repaired: np.ndarray  # tracked frames with the frame's L/R labels repaired
    smoothed: np.ndarray  # the same against the lightly smoothed reference (context only)
    lines: np.ndarray  # tracked frames, straight lines between the stream's own keyframes (what flow adds)


def accuracy(frames: list, interval: int, fps: float) -> Accuracy:
    """Every-frame inference and the keyframe stream on the same frames, compared."""
    ref_pipe = PosePipeline(threads=2)
    ref = [ref_pipe.process(f) for f in frames]
    est, _ = estimator(interval, threads=2)
    out = run_stream(est, frames, fps) + est.flush()

    def dist(tracked: bool, lr_repaired: bool, against: list) -> np.ndarray:
        d = [frame_dist_pct(e.lm, r, lr_repaired)
             for e, r in zip(out, against) if e.tracked == tracked and r is not None and e.lm is not None]
        return np.concatenate(d) if d else np.array([np.nan])
    lines = [frame_dist_pct(x, r, False) for x, r, e in zip(between_keyframes(out), ref, out)
             if e.tracked and x is not None and r is not None]
    return Accuracy(ref, [e.lm for e in out], [k for k, e in enumerate(out) if not e.tracked and e.lm is not None],
                    dist(True, False, ref), dist(False, False, ref), dist(True, True, ref),
                    dist(True, True, smoothed_reference(ref)),
                    np.concatenate(lines) if lines else np.array([np.nan]))


def between_keyframes(out: list) -> list:
    """Each frame's landmarks on the straight line between the stream's keyframes around it
    (keyframes as they are; None outside two found keyframes)."""
    keys = [k for k, e in enumerate(out) if not e.tracked and e.lm is not None]
    lines: list = [None] * len(out)
    for a, b in zip(keys, keys[1:]):
        for k in range(a, b + 1):
            lines[k] = out[a].lm + (k - a) / (b - a) * (out[b].lm - out[a].lm)
    return lines


def smoothed_reference(ref: list, window: int = 5) -> list:
    """Every-frame inference lightly smoothed, as context for its own jitter: left/right
    labels of each pair made continuous with the previous frame (the model swaps them on a
    person facing it), then a Savitzky–Golay fit (order 2) over ``window`` frames; frames
    with nobody, or without ``window`` found frames around them, are left out (None)."""
    from scipy.signal import savgol_filter
    lm, _ = labels_continuous(ref)
    half, out = window // 2, []
    for k in range(len(lm)):
        near = lm[max(0, k - half):k + half + 1]
        if len(near) < window or any(x is None for x in near):
            out.append(None)
            continue
        fit = savgol_filter(np.stack(near)[:, :, :2], window, 2, axis=0)[half]
        sm = lm[k].copy()
        sm[:, :2] = fit
        out.append(sm)
    return out


def labels_continuous(ref: list) -> tuple[list, int]:
    """Every-frame landmarks with each left/right pair of gait points named as on the
    previous frame where the other order lies closer (the model swaps them on a person
    facing it); and how often a pair's name flips from one frame to the next in the
    reference as given (its own label flips: a run of frames named the other way counts 2)."""
    lm = [None if r is None else r.copy() for r in ref]
    renamed = np.zeros(len(_G) // 2, bool)  # the previous frame's pairs: named the other way as given
    flips = 0
    for prev, cur in zip(lm, lm[1:]):
        if prev is None or cur is None:
            renamed[:] = False
            continue
        for i, (a, b) in enumerate(zip(_G[::2], _G[1::2])):
            same = np.linalg.norm(cur[[a, b], :2] - prev[[a, b], :2], axis=1).sum()
            crossed = np.linalg.norm(cur[[b, a], :2] - prev[[a, b], :2], axis=1).sum()
            flips += bool(crossed < same) != renamed[i]
            renamed[i] = crossed < same
            if renamed[i]:
                cur[[a, b]] = cur[[b, a]]
    return lm, flips


def reference_noise_pct(ref: list, order: int = 4) -> float:
    """The reference's frame-to-frame noise: σ per image coordinate, % of torso, of the
    white noise that would explain its ``order``-th differences (labels made continuous;
    a robust spread, so label glitches and the turn at the image edge do not count).
    A smooth path's 4th difference over 4 frames at 60 fps is tiny; white noise's has
    variance 70 σ², so this reads the noise, not the motion (orders 2-6 agree to 0.05 %
    on the pose2sim clips)."""
    from math import comb
    w = np.array([(-1) ** (order - i) * comb(order, i) for i in range(order + 1)], float)
    lm, _ = labels_continuous(ref)
    diffs = [np.tensordot(w, np.stack([x[_G, :2] for x in lm[k:k + order + 1]]), axes=1).ravel()
             * 100 / torso_length_px(lm[k + order // 2])
             for k in range(len(lm) - order) if all(x is not None for x in lm[k:k + order + 1])]
    if not diffs:
        return float("nan")
    v = np.concatenate(diffs)
    return float(1.4826 * np.median(np.abs(v - np.median(v))) / np.sqrt((w ** 2).sum()))


RAYLEIGH_MEDIAN = float(np.sqrt(2 * np.log(2)))  # median distance / σ of a 2-D Gaussian error


def keyframe_anchored_floor_pct(noise_pct: float, interval: int) -> tuple[float, float]:
    """Medians (% of torso) the reference's own noise σ (:func:`reference_noise_pct`) leaves
    for (a) the true path itself and (b) a path anchored on model keyframes as noisy as
    the reference (the same model on crops a few px apart) with flow that is otherwise
    perfect: a tracked frame at fraction f of the interval carries (1 − f) of one
    keyframe's noise and f of the next's, on top of the reference's. A floor under the
    tracked frames' median, not a measurement of them."""
    f = np.arange(1, interval) / interval
    carried = float(np.mean((1 - f) ** 2 + f ** 2)) if interval > 1 else 0.0
    return RAYLEIGH_MEDIAN * noise_pct, RAYLEIGH_MEDIAN * noise_pct * float(np.sqrt(1 + carried))


def per_point_pct(d: np.ndarray) -> str:
    """Tracked frames' median distance per gait point, "name L/R", from the per-frame
    distances of :func:`frame_dist_pct` laid end to end."""
    if d.size % len(_G):
        return "no tracked frames"
    med = np.nanmedian(d.reshape(-1, len(_G)), axis=0).reshape(-1, 2)
    return ", ".join(f"{name} {a:.2f}/{b:.2f}" for name, (a, b) in zip(POINT_NAMES, med))


POINT_NAMES = ("shoulder", "hip", "knee", "ankle", "heel", "toe")  # GAIT_POINTS' (left, right) pairs


def bad_frames(out: list, ref: list, above_pct: float = 10.0) -> str:
    """Frames whose gait points' median distance exceeds ``above_pct`` % of torso, as
    ranges ("41-43, 61-63"): where the tail (p95) comes from."""
    bad = [k for k, (e, r) in enumerate(zip(out, ref)) if e is not None and r is not None
           and np.median(frame_dist_pct(e, r, False)) > above_pct]
    runs: list[list[int]] = []
    for k in bad:
        if runs and k - runs[-1][-1] <= 2:  # a keyframe between two bad tracked frames joins them
            runs[-1].append(k)
        else:
            runs.append([k])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs) or "none"


def tracked_frame_ms(videos: dict[str, list], interval: int) -> tuple[float, float]:
    """Thread CPU ms of a push that ran no model (the work image and the flow, what every
    tracked frame costs), median and mean over the four videos, one TFLite thread."""
    est, pipe = estimator(interval, threads=1)
    ms = []
    for frames in videos.values():
        est.reset()
        pipe.reset()
        for k, f in enumerate(frames):
            luma = luma_of(f)
            c0 = time.thread_time()
            released = est.push(k, k / 60.0, f, luma)
            dt = time.thread_time() - c0
            if not released:  # held for the next keyframe: flow only
                ms.append(1000 * dt)
        est.flush()
    return float(np.median(ms)), float(np.mean(ms))


def crop_sensitivity_pct(frames: list, shift_px: float, every: int = 3) -> np.ndarray:
    """How far the landmark model's gait points move (% of torso) when its crop moves by
    ``shift_px`` on the same frame (a random direction): the floor under any comparison of
    two streams whose crops differ — a keyframe's crop comes from the flow, every-frame
    inference's from the previous frame's (noisy) landmarks."""
    from dataclasses import replace
    pipe = PosePipeline(threads=2)
    rng = np.random.default_rng(0)
    d = []
    for k, frame in enumerate(frames):
        rect = pipe.roi
        pipe.process(frame)
        if rect is None or k % every:
            continue
        base = pipe._landmarks.run(frame, rect).landmarks
        a = rng.uniform(0, 2 * np.pi)
        moved = replace(rect, center_x_px=rect.center_x_px + shift_px * np.cos(a),
                        center_y_px=rect.center_y_px + shift_px * np.sin(a))
        d.append(frame_dist_pct(pipe._landmarks.run(frame, moved).landmarks, base, False))
    return np.concatenate(d) if d else np.array([np.nan])


def frame_dist_pct(lm: np.ndarray, ref: np.ndarray, lr_repaired: bool) -> np.ndarray:
    """Gait points' distances in % of torso; ``lr_repaired``: with the frame's left/right
    labels swapped if that fits better (the gait engine repairs such swaps: LabelSwapRepair)."""
    d = np.linalg.norm(lm[_G, :2] - ref[_G, :2], axis=1)
    if lr_repaired:
        swapped = lm[_G, :2].reshape(-1, 2, 2)[:, ::-1].reshape(-1, 2)  # GAIT_POINTS are (left, right) pairs
        d_swap = np.linalg.norm(swapped - ref[_G, :2], axis=1)
        d = d_swap if np.median(d_swap) < np.median(d) else d
    return 100 * d / torso_length_px(ref)


def reference_jitter_pct(ref: list) -> np.ndarray:
    """Gait points' distance of each every-frame result from the mean of its two neighbours,
    % of torso: a floor under any comparison with every-frame inference, since a smooth
    estimate of the true path differs from the reference by the reference's own noise
    (the landmark model moves by 1-3 % of the torso when its crop moves a little)."""
    d = [frame_dist_pct((a + c) / 2, b, False)
         for a, b, c in zip(ref, ref[1:], ref[2:]) if a is not None and b is not None and c is not None]
    return np.concatenate(d) if d else np.array([np.nan])


def zeni_events(lms: list, fps: float, forward_sign: float = -1.0) -> dict[str, np.ndarray]:
    """Heel strikes and toe-offs of both feet (Zeni 2008) in frames; the walker faces image
    x times ``forward_sign`` (the Sports2D walker goes toward -x)."""
    from rig.gait.events import CoordinateEventDetector
    lm = np.stack([np.full((33, 4), np.nan) if x is None else x for x in lms])
    t = np.arange(len(lm)) / fps
    pelvis = 0.5 * (lm[:, 23, 0] + lm[:, 24, 0])
    out = {}
    for side, heel, toe in (("L", 29, 31), ("R", 30, 32)):
        z = CoordinateEventDetector().detect(t, forward_sign * lm[:, heel, 0], forward_sign * lm[:, toe, 0],
                                             forward_sign * pelvis)
        out[f"{side}_hs"], out[f"{side}_to"] = z.heel_strike_candidates_s_ * fps, z.toe_off_candidates_s_ * fps
    return out


def side_view_forward_sign(lms: list, min_foot_torso: float = 0.25) -> float | None:
    """+1 or -1: the image-x direction the toes point in (the walking direction of a side
    view); None when the feet are foreshortened (a front or back view: no x-based events)."""
    lm = np.stack([x for x in lms if x is not None])
    foot = np.concatenate([lm[:, 31, 0] - lm[:, 29, 0], lm[:, 32, 0] - lm[:, 30, 0]])
    torso = float(np.median([torso_length_px(x) for x in lm]))
    along = float(np.median(foot))
    return None if abs(along) < min_foot_torso * torso else float(np.sign(along))


def in_view(ref: list, width: int, height: int) -> tuple[int, int]:
    """The longest run of frames (start, end) on which every gait point of the every-frame
    reference lies inside the picture; a frame without landmarks inside a run does not end
    it. Outside it the model places a foot that left the picture by guesswork (the
    walker's toe at x = -5 to -21 px from frame 47, then her left/right names flipping
    frame to frame) and no stream can be judged by its events there."""
    inside = [lm is None or bool(((lm[_G, 0] >= 0) & (lm[_G, 0] < width)
                                  & (lm[_G, 1] >= 0) & (lm[_G, 1] < height)).all()) for lm in ref]
    best, start = (0, 0), None
    for k, ok in enumerate([*inside, False]):
        if ok and start is None:
            start = k
        elif not ok and start is not None:
            best, start = max(best, (start, k), key=lambda r: r[1] - r[0]), None
    return best


def only(lms: list, window: tuple[int, int]) -> list:
    """The landmarks inside ``window`` (frames), None elsewhere."""
    return [x if window[0] <= k < window[1] else None for k, x in enumerate(lms)]


def events_agree(ref: dict, ours: dict, window: tuple[float, float]) -> tuple[int, int]:
    """(reference events inside ``window`` (frames) matched within one frame by the tracked stream, events)."""
    hit = n = 0
    for key, frames in ref.items():
        for f in frames[(frames >= window[0]) & (frames < window[1])]:
            n += 1
            hit += bool(len(ours[key])) and float(np.min(np.abs(ours[key] - f))) <= 1.0 + 1e-9
    return hit, n


# -- Pi-speed rig through the public CLI ---------------------------------------------------------
RIGS = {  # name: (trigger rate, emulated detector/landmark ms or None, node pinned to one core,
    # the clip held in memory: a camera costing the CPU what a Pi's does, instead of decoding on it)
    "pi120": (120.0, PI5_MS, False, False),
    "pi120mem": (120.0, PI5_MS, False, True),
    "core60": (60.0, None, True, False),
    "core120": (120.0, None, True, False),
    "core60mem": (60.0, None, True, True),
    "core120mem": (120.0, None, True, True),
}
# the goals for the one-core runs: seconds from belt stop to the session's analysis
GOAL_ANALYSED_S = {60.0: 5.0, 120.0: 60.0}  # by trigger rate


def rig_run(walk_s: float, rate_hz: float, emulate_ms: tuple[float, float] | None, one_core: bool,
            in_memory: bool = False, max_wait_s: float = 900.0, review_video: bool = True,
            crop_spool_mb: float | None = None) -> dict:
    """One walk; gives up ``max_wait_s`` after the belt stopped (a loaded machine), then
    reporting the keypoint frames seen so far instead of the node's end count. ``in_memory``:
    the stand-in camera serves the clip from memory (its RSS then holds the clip, ~670 MB).
    ``review_video`` False: the node does not encode review video (on a Pi the camera's own
    encoder makes its pictures; here OpenCV would encode 1080x1920 frames on the node's CPU)."""
    from firmware_bridge.bridge import Bridge
    from firmware_bridge.simulator import TreadmillSimulator
    from rig.bus import topics
    from rig.bus.client import BusClient
    from rig.bus.payloads import NodeEnd, SessionSummary, decode, decode_keypoints
    from rig.config import BridgeConfig, CoordinatorConfig, SerialSettings, SessionSettings, StorageSettings
    from rig.coordinator.daemon import Coordinator
    from rig.sim.broker import LocalBroker

    tmp = Path(tempfile.mkdtemp(prefix="bench-node-"))
    broker = LocalBroker(tmp).start()
    mqtt = broker.settings()
    line = tmp / "trigger-line"
    sim = TreadmillSimulator(tmp / "tty", seed=3, trigger_line=line).start()
    bridge = Bridge(BridgeConfig(mqtt=mqtt, serial=SerialSettings(port=sim.path))).start()
    stop = threading.Event()
    coord = Coordinator(CoordinatorConfig(mqtt=mqtt, storage=StorageSettings(database=tmp / "g.sqlite"),
                                          session=SessionSettings(views=["left"], start_after_s=0.5,
                                                                  end_timeout_s=600.0, fps=rate_hz)))
    coord_thread = threading.Thread(target=coord.run, args=(stop,), daemon=True)
    coord_thread.start()
    (tmp / "node.toml").write_text(
        f'view = "left"\nfacing = "left"\nspool_dir = "{tmp}"\n'
        + (f"crop_spool_max_mb = {crop_spool_mb}\n" if crop_spool_mb else "") + f'[camera]\nbackend = "video"\n'
        f'video = "{sample_path("cam01.mp4")}"\ntrigger_line = "{line}"\nvideo_in_memory = {str(in_memory).lower()}\n'
        '[model]\nthreads = 1\n'
        + (f"emulate_detector_ms = {emulate_ms[0]}\nemulate_landmark_ms = {emulate_ms[1]}\n" if emulate_ms else "")
        + ("" if review_video else "[video]\nenabled = false\n"))
    node = subprocess.Popen([sys.executable, "-m", "rig.cli", "node", "--config", str(tmp / "node.toml"),
                             "--mqtt", f"{mqtt.host}:{mqtt.port}", "--rig-id", mqtt.rig_id],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if one_core else None)
    watch = BusClient(mqtt, "bench-watch").start()
    ends, summaries, info = queue.Queue(), queue.Queue(), {}
    watch.on(topics.NODE_END, lambda m: ends.put(decode(NodeEnd, m.payload)))
    watch.on(topics.SESSION_SUMMARY, lambda m: summaries.put(decode(SessionSummary, m.payload)))
    received = []  # (wall clock received, trigger time) of each keypoint frame
    watch.on(topics.NODE_KEYPOINTS, lambda m: received.append((time.time(), decode_keypoints(m.payload).t)))
    watch.on(topics.NODE_INFO, lambda m: info.update(json.loads(m.payload)))
    health: dict = {}  # the node's newest figures (it reports at once when its session ends)
    watch.on(topics.DIAG_HEALTH, lambda m: health.update(json.loads(m.payload)["figures"])
             if topics.DIAG_HEALTH.fields(mqtt.rig_id, m.topic).get("daemon", "").startswith("node") else None)
    rss, rss_t, memory_map = [], [], {}

    def sample_rss() -> None:
        rss.append(vm_rss_mb(node.pid))
        rss_t.append(time.monotonic())
        if rss[-1] >= max(rss):
            memory_map.clear()
            memory_map.update(rss_by_mapping(node.pid))
    try:
        deadline = time.monotonic() + 120
        while not info and time.monotonic() < deadline:  # the node's self-test, then its birth
            time.sleep(0.5)
        sim.belt_start(1.0)
        t_end = time.monotonic() + 0.5 + walk_s
        while time.monotonic() < t_end:
            sample_rss()
            time.sleep(1.0)
        sim.belt_stop()
        t_stop, stop_wall = time.monotonic(), time.time()
        walking = dict(health)  # the node's last report while walking (every 5 s)
        while ends.empty() and time.monotonic() - t_stop < max_wait_s:
            sample_rss()
            time.sleep(0.5)
        end = None if ends.empty() else ends.get()
        summary = summaries.get(timeout=60) if end is not None else None
        analysed_s = time.monotonic() - t_stop
        time.sleep(2.0)  # the node's health report after its end, and a little time for its review video
    finally:
        node.terminate()
        try:
            node.wait(60)
        except subprocess.TimeoutExpired:  # a node starved by a loaded machine
            node.kill()
            node.wait()
        stop.set()
        coord_thread.join(10)
        watch.close()
        bridge.stop()
        sim.stop()
        broker.stop()
    got = np.array(received).reshape(-1, 2)
    lat, live = got[:, 0] - got[:, 1], got[:, 0] < stop_wall
    memory = {"node_peak_rss_mb": round(max(rss), 1), "rss_slope_mb_per_min": rss_slope_mb_per_min(rss_t, rss),
              "rss_at_peak_by_mapping_mb": memory_map, "pacing": info.get("pacing", {}),
              "walking": {k: walking.get(k) for k in NODE_FIGURES}, "at_end": {k: health.get(k) for k in NODE_FIGURES}}
    if end is None:
        return {"walk_s": walk_s, "rate_hz": rate_hz, "pulses": sim.pulses_sent, "stored": None,
                "published_when_given_up": len(got), "dropped": None, "spool_share_pct": None,
                "complete": False, "summary_after_belt_stop_s": f"none within {max_wait_s:.0f}", **memory}
    return {"walk_s": walk_s, "rate_hz": rate_hz, "pulses": sim.pulses_sent, "stored": end.frames,
            "dropped": end.dropped, "tracked": end.tracked, "spooled": end.spooled,
            "spool_share_pct": round(100 * end.spooled / max(1, end.captured), 1),
            "complete": summary.complete, "summary_after_belt_stop_s": round(analysed_s, 1),
            **memory, "latency_s_p50": round(float(np.percentile(lat, 50)), 3),
            "latency_s_p95": round(float(np.percentile(lat, 95)), 3),
            # frames published while the belt ran (spooled frames come after it stops, by design)
            "published_live": int(live.sum()),
            "latency_live_s_p95": round(float(np.percentile(lat[live], 95)), 3) if live.any() else None,
            "last_published_after_belt_stop_s": round(float(got[:, 0].max() - stop_wall), 1),
            **frames_without_landmarks(tmp / "g.sqlite", summary.session_id, loops=not in_memory)}


def frames_without_landmarks(database: Path, session_id: int, loops: bool = True) -> dict:
    """The stored track's frames without the person's landmarks: in the first keyframe
    interval after the stand-in footage loops (the person jumps ~1 torso there: the patient
    selector refuses the new place until the next keyframe), and elsewhere (named).
    ``loops`` False: the clip played forth and back, no jump to excuse."""
    from rig.coordinator.export import session_tracks
    from rig.coordinator.storage import Storage
    from rig.node.pacing import DEFAULT_MAX_INTERVAL
    found = session_tracks(Storage(database), session_id)["left"].found
    from rig.node.camera import VideoCamera
    cut = VideoCamera.after_loop(found.size, VideoCamera.frames_in(sample_path("cam01.mp4")), DEFAULT_MAX_INTERVAL) \
        if loops else np.zeros(found.size, bool)
    away = np.flatnonzero(~found & ~cut)
    return {"without_landmarks": int((~found).sum()), "without_landmarks_at_loop_cuts": int((~found & cut).sum()),
            "without_landmarks_elsewhere": away.tolist()}


NODE_FIGURES = ("keyframe_interval", "pace_mode", "overhead_ms", "overhead_ms_capture", "overhead_ms_fetch",
                "overhead_ms_publish", "inference_latency_ms_p50", "inference_latency_ms_p95", "frames_inferred",
                "frames_tracked", "inference_backlog", "crop_spool_frames", "video_recorded", "video_not_kept")


def rss_slope_mb_per_min(t_s: list[float], rss_mb: list[float]) -> float:
    """Least-squares growth of RSS over the second half of the run (after the warm-up):
    a leak shows as a steady slope, a bounded buffer as none."""
    half = len(t_s) // 2
    if len(t_s) - half < 3:
        return float("nan")
    return round(float(np.polyfit(np.array(t_s[half:]) / 60.0, rss_mb[half:], 1)[0]), 2)


def rss_by_mapping(pid: int, top: int = 8) -> dict[str, float]:
    """Where the resident memory is, MB by mapping (a library, the heap, anonymous memory:
    frames, numpy buffers and TFLite arenas), the largest first."""
    sizes: dict[str, float] = {}
    name = "?"
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return {}
    for line in text.splitlines():
        head = line.split(maxsplit=6)
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            name = Path(head[5]).name if len(head) > 5 else "[anon]"
        elif head[0] == "Rss:":
            sizes[name] = sizes.get(name, 0.0) + int(head[1]) / 1024
    return {k: round(v, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:top]}


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--intervals", default="4,8", help="keyframe intervals to compare with every frame")
    ap.add_argument("--walk-s", type=float, default=30.0, help="rig runs: seconds of walking (0: skip)")
    ap.add_argument("--rigs", default="pi120", help=f"comma-separated rig runs of {', '.join(RIGS)}")
    ap.add_argument("--max-wait-s", type=float, default=900.0,
                    help="rig runs: give up this long after the belt stopped (report what was published)")
    ap.add_argument("--no-review-video", action="store_true",
                    help="rig runs: the node records no review video (a Pi's camera encoder makes it)")
    ap.add_argument("--crop-spool-mb", type=float, help="rig runs: the node's disk bound for crops (long walks "
                    "on a loaded machine outgrow the default)")
    ap.add_argument("--skip-offline", action="store_true", help="only the rig runs")
    ap.add_argument("--events-only", action="store_true", help="only the Sports2D walker's gait events")
    ap.add_argument("--throughput-only", action="store_true", help="only the keyframe vs every-frame throughput")
    args = ap.parse_args()
    intervals = [int(x) for x in args.intervals.split(",")]
    if args.events_only or args.throughput_only or not args.skip_offline:  # decoded frames: gigabytes, not for the rig runs
        videos = {name: read_frames(sample_path(name)) for name in SAMPLES}
        demo = read_frames(sample_path(SPORTS2D_WALKER), WALK_SEGMENT[1])
        walker = demo[:WALKER_FRAMES], demo[WALK_SEGMENT[0]:]
    if args.throughput_only:
        print_throughput(videos, intervals)
        return 0
    if args.events_only:
        for n in intervals:
            walker_events(walker[1], n)
        return 0
    if not args.skip_offline:
        offline(videos, walker, intervals)
    for name in args.rigs.split(",") if args.walk_s > 0 else []:
        rate_hz, emulate_ms, one_core, in_memory = RIGS[name]
        r = rig_run(args.walk_s, rate_hz, emulate_ms, one_core, in_memory, args.max_wait_s, not args.no_review_video,
                    args.crop_spool_mb)
        how = (f"interpreter slowed to {emulate_ms[1]:.0f}/{emulate_ms[0]:.0f} ms landmark/detector"
               if emulate_ms else "this CPU's speed") + (", node pinned to one core" if one_core else "")
        how += ", no review video" if args.no_review_video else ""
        how += ", the clip served from memory (no decoding on the CPU, played forth and back)" if in_memory else ""
        print(f"rig {name}: cam01 at {rate_hz:.0f} Hz, {how}, one TFLite thread, {args.walk_s:.0f} s walk:")
        print("  " + json.dumps(r))
        print(f"  node peak RSS {r['node_peak_rss_mb']} MB (goal <= {GOAL_RSS_MB:.0f}), slope over the second half "
              f"{r['rss_slope_mb_per_min']} MB/min; at the peak: {r['rss_at_peak_by_mapping_mb']}")
        print(f"  frames produced {r['pulses']}, stored {r['stored']}, dropped {r['dropped']}, "
              f"spooled {r['spool_share_pct']} %; analysed {r['summary_after_belt_stop_s']} s after the belt "
              f"stopped" + (f" (goal: all stored, <= {GOAL_ANALYSED_S[rate_hz]:.0f} s)" if one_core else ""),
              flush=True)
        if r.get("without_landmarks") is not None:
            print(f"  frames without landmarks {r['without_landmarks']}: {r['without_landmarks_at_loop_cuts']} just after "
                  f"the footage loops, elsewhere {len(r['without_landmarks_elsewhere'])} "
                  f"{r['without_landmarks_elsewhere'][:20]} (goal 0); published while walking {r['published_live']}, "
                  f"latency p95 {r['latency_live_s_p95']} s; last frame {r['last_published_after_belt_stop_s']} s "
                  "after the belt stopped")
        end = r["at_end"]
        if end.get("video_recorded") is not None:
            print(f"  review pictures kept {end['video_recorded']}, not kept {end['video_not_kept']} (counted)")
    return 0


def print_throughput(videos: dict, intervals: list[int]) -> None:
    fps = throughput(videos, intervals)
    print(f"throughput, 1 TFLite thread, {sum(map(len, videos.values()))} frames of the four pose2sim videos "
          f"(wall clock; by this thread's CPU time):")
    print(f"  every frame: {fps[1][0]:.1f} fps; {fps[1][1]:.1f} fps", flush=True)
    for n in intervals:
        print(f"  keyframe every {n}: {fps[n][0]:.1f} fps = {fps[n][0] / fps[1][0]:.2f}x; {fps[n][1]:.1f} fps = "
              f"{fps[n][1] / fps[1][1]:.2f}x (goal >= {GOAL_SPEEDUP:.0f}x)")
    cost = tracked_frame_ms(videos, intervals[0])
    print(f"  a tracked frame (work image + flow, no model) at interval {intervals[0]}: {cost[0]:.2f} ms median, "
          f"{cost[1]:.2f} ms mean (thread CPU)", flush=True)


def offline(videos: dict, walker: tuple[list, list], intervals: list[int]) -> None:
    print_throughput(videos, intervals)

    print("the landmark model's own sensitivity to where its crop lies (same frame, crop moved 2/4/8 px), "
          "gait points' median % of torso:")
    print("  " + "; ".join(f"{name} " + "/".join(f"{np.median(crop_sensitivity_pct(frames, px)):.2f}" for px in (2, 4, 8))
                           for name, frames in videos.items()), flush=True)
    print(f"accuracy of tracked frames vs inference on every frame (% of torso; goal median <= "
          f"{GOAL_MEDIAN_TORSO_PCT})")
    for n in intervals:
        rows, pooled, floor, repaired, jitter, treadmill_events, smooth = [], [], [], [], [], [], []
        breakdown, bounds = [], []
        for name, frames in [*videos.items(), (SPORTS2D_WALKER, walker[0])]:
            acc = accuracy(frames, n, 30.0 if name == SPORTS2D_WALKER else 60.0)
            ref, ours, d, k, lr, sm = acc.ref, acc.ours, acc.tracked, acc.keyframe, acc.repaired, acc.smoothed
            if name != SPORTS2D_WALKER and (sign := side_view_forward_sign(ref)) is not None:
                edge = 6  # the smoothing and peak search need a few frames either side
                er, eo = zeni_events(ref, 60.0, sign), zeni_events(ours, 60.0, sign)
                hit, total = events_agree(er, eo, (edge, len(frames) - edge))
                treadmill_events.append(f"{name} {hit}/{total}" if any(map(len, er.values())) else
                                        f"{name} none in either stream: {len(frames)} frames hold less than two "
                                        "strides, too few for the method's stride period")
            elif name != SPORTS2D_WALKER:
                treadmill_events.append(f"{name} (front/back view: no x-based events)")
            pooled.append(d)
            floor.append(k)
            repaired.append(lr)
            jitter.append(f"{name} {np.median(reference_jitter_pct(ref)):.2f}")
            rows.append(f"{name} {np.median(d):.2f}/{np.percentile(d, 95):.2f} (L/R repaired "
                        f"{np.median(lr):.2f}/{np.percentile(lr, 95):.2f}; keyframes {np.median(k):.2f})")
            smooth.append(f"{name} {np.median(sm):.2f}/{np.percentile(sm, 95):.2f}")
            breakdown.append(f"      {name}: {per_point_pct(d)}; frames over 10 %: {bad_frames(ours, ref)}; "
                             f"the reference flips a L/R pair's names {labels_continuous(ref)[1]} times; "
                             f"straight lines between the same keyframes instead of flow {np.median(acc.lines):.2f}")
            noise = reference_noise_pct(ref)
            true_path, anchored = keyframe_anchored_floor_pct(noise, n)
            bounds.append(f"{name} {noise:.2f} -> {true_path:.2f} / {anchored:.2f}")
        treadmill = np.concatenate(pooled[:len(videos)])  # the pose2sim clips: the rig's own footage
        print(f"  interval {n}, the pose2sim treadmill clips pooled: tracked frames median "
              f"{np.nanmedian(treadmill):.2f} %, p95 {np.nanpercentile(treadmill, 95):.2f} % (goal median <= "
              f"{GOAL_MEDIAN_TORSO_PCT})")
        d, k, lr = np.concatenate(pooled), np.concatenate(floor), np.concatenate(repaired)
        print(f"  interval {n}, all clips pooled: tracked frames median {np.nanmedian(d):.2f} %, p95 "
              f"{np.nanpercentile(d, 95):.2f} %; L/R repaired median {np.nanmedian(lr):.2f} %, p95 "
              f"{np.nanpercentile(lr, 95):.2f} %; keyframes (model vs model) median {np.nanmedian(k):.2f} %, p95 "
              f"{np.nanpercentile(k, 95):.2f} %")
        print(f"    median/p95 per video: {'; '.join(rows)}")
        print("    tracked frames' median per gait point (left/right), and where the tail comes from:")
        print("\n".join(breakdown))
        print(f"    floor set by the reference's own noise: sigma per coordinate (4th differences) -> median the "
              f"true path would score / a path on model keyframes as noisy with perfect flow between: "
              f"{'; '.join(bounds)}")
        print(f"    pose2sim treadmill clips (60 fps), keyframe every {n}: Zeni events within one frame of "
              f"every-frame inference: {'; '.join(treadmill_events)}")
        print(f"    the reference's own frame-to-frame noise (every-frame inference vs the mean of its two "
              f"neighbours), median per video: {'; '.join(jitter)}")
        print(f"    context only: tracked frames (L/R repaired) vs the reference lightly smoothed (labels made "
              f"continuous, Savitzky-Golay 5 frames), median/p95: {'; '.join(smooth)}")
        walker_events(walker[1], n)


def walker_events(frames: list, n: int) -> None:
    """Zeni events of both streams from the same detector, raw and after the gait engine's
    own left/right repair (rig.gait's LabelSwapRepair, as the report runs it), read on the
    frames where she is wholly in the picture (:func:`in_view`); the reference's events
    that the tracked stream misses are named with their frames."""
    acc = accuracy(frames, n, 30.0)
    ref, ours = acc.ref, acc.ours
    view = in_view(ref, frames[0].shape[1], frames[0].shape[0])
    ref_in, ours_in = only(ref, view), only(ours, view)
    hs = np.sort(np.concatenate([v for k, v in zeni_events(ref_in, 30.0).items() if k.endswith("_hs")]))
    print(f"    Sports2D walker: every gait point of the reference inside the picture on frames {view[0]}-{view[1] - 1}"
          f" of {len(frames)}; the reference's steps there (heel strike to the other foot's) in frames: "
          f"{np.round(np.diff(hs), 1).tolist()}")
    raw = zeni_events(ref_in, 30.0), zeni_events(ours_in, 30.0)
    fixed = zeni_events(repaired(ref_in), 30.0), zeni_events(repaired(ours_in), 30.0)
    for how, (er, eo) in (("raw", raw), (f"after LabelSwapRepair('{WALKER_NEAR_SIDE}')", fixed)):
        hit, total = events_agree(er, eo, view)
        missed = missed_events(er, eo, view)
        print(f"    Sports2D walker (frames {WALK_SEGMENT[0]}-{WALK_SEGMENT[1] - 1}, 30 fps), keyframe every {n}, {how}: "
              f"Zeni events within one frame of every-frame inference: {hit}/{total}"
              + (f"; missed {missed}" if missed else ""), flush=True)
    er, eo = zeni_events(ref, 30.0), zeni_events(ours, 30.0)
    missed = missed_events(er, eo, OLD_WALK_EVENTS)
    print(f"    as earlier runs read them, on every frame and counted over frames {OLD_WALK_EVENTS[0]}-"
          f"{OLD_WALK_EVENTS[1] - 1} (she leaves the picture from frame {view[1]}): "
          f"{'%d/%d' % events_agree(er, eo, OLD_WALK_EVENTS)}" + (f"; missed {missed}" if missed else ""))
    gaps = keyframe_gaps(acc, missed_events(*raw, view))
    if gaps:
        print(f"    at the keyframe nearest each missed event both streams ran the model on the same frame; their "
              f"event point there: {'; '.join(gaps)}")
    hit, total, missed = events_with_reference_crops(frames, n, view)
    print(f"    the same with every keyframe given the reference's own crop (keyframes equal to the reference): "
          f"{hit}/{total}" + (f"; missed {missed}" if missed else ""), flush=True)


def events_with_reference_crops(frames: list, n: int, view: tuple[int, int]) -> tuple[int, int, list[str]]:
    """The walker's events when every keyframe's model run is given the crop every-frame
    inference used on that frame (its keyframes then equal the reference exactly): what
    is left of the disagreement is the reference's own noise on the tracked frames in
    between, which no tracking can follow. (hit, events, missed)."""
    ref_pipe = PosePipeline(threads=2)
    crops, ref = [], []
    for f in frames:
        crops.append(ref_pipe.roi)
        ref.append(ref_pipe.process(f))
    est, pipe = estimator(n, threads=2)
    index = {id(f): k for k, f in enumerate(frames)}

    def infer(frame: np.ndarray) -> np.ndarray | None:
        crop = crops[index[id(frame)]]
        if crop is not None and pipe.roi is not None:  # the stream is tracking: its crop replaced
            pipe._rect = crop
        return pipe.process(frame)
    est.infer = infer
    ours = [e.lm for e in run_stream(est, frames, 30.0) + est.flush()]
    er, eo = zeni_events(only(ref, view), 30.0), zeni_events(only(ours, view), 30.0)
    return (*events_agree(er, eo, view), missed_events(er, eo, view))


EVENT_POINT = {"hs": (29, 30), "to": (31, 32)}  # Zeni: heels for heel strikes, toe tips for toe-offs (L, R)


def keyframe_gaps(acc: Accuracy, missed: list[str]) -> list[str]:
    """For each missed event ("R_to@55.1 (...)"), how far apart the two streams' model runs
    put its point on the keyframe nearest it: a gap of several % of torso on a frame both
    inferred means the event is decided by where the model's crop lay, not by the flow."""
    out = []
    for m in missed:
        key, at = m.split(" ")[0].split("@")
        side, kind = key.split("_")
        point = EVENT_POINT[kind][side == "R"]
        k = min(acc.keyframes, key=lambda j: abs(j - float(at)))
        r, o = acc.ref[k], acc.ours[k]
        if r is None:
            continue
        gap = float(np.linalg.norm(r[point, :2] - o[point, :2]))
        out.append(f"{key}@{at}: frame {k}, {gap:.0f} px ({100 * gap / torso_length_px(r):.0f} % of torso)")
    return out


def repaired(lms: list) -> list:
    """The gait engine's left/right repair for the walker's view (her left side is near)."""
    from rig.gait._signals import LabelSwapRepair
    lm = np.stack([np.full((33, 4), np.nan) if x is None else x for x in lms])
    fixed = LabelSwapRepair(WALKER_NEAR_SIDE).fit(lm).transform(lm)
    return [None if x is None else f for x, f in zip(lms, fixed)]


def missed_events(ref: dict, ours: dict, window: tuple[float, float]) -> list[str]:
    """The reference's events in ``window`` with no tracked-stream event within one frame,
    as "L_hs@52.0 (nearest 47.9)"; a missed heel strike also says how long after the other
    foot's last heel strike the reference put it (a step far shorter than the clip's others
    is the reference's own glitch, not a step)."""
    out = []
    for key, frames in ref.items():
        for f in frames[(frames >= window[0]) & (frames < window[1])]:
            near = ours[key][np.argmin(np.abs(ours[key] - f))] if len(ours[key]) else None
            if near is None or abs(near - f) > 1.0 + 1e-9:
                step = ""
                if key.endswith("_hs"):
                    other = ("R" if key[0] == "L" else "L") + "_hs"
                    before = ref[other][ref[other] < f]
                    step = f", ref step {f - before.max():.1f} frames after {other}@{before.max():.1f}" if len(before) else ""
                out.append(f"{key}@{f:.1f} (nearest {'none' if near is None else f'{near:.1f}'}{step})")
    return out


if __name__ == "__main__":
    sys.exit(main())
