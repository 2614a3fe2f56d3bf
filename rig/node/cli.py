"""``gaitrig node``: the camera-node daemon for one view."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from rig.config import NodeConfig
from rig.daemon import add_config_args, load_role_config, stop_event_on_signals
from rig.node.camera import Camera, CameraError
from rig.node.clock import WallClock
from rig.node.daemon import Estimator
from rig.node.pacing import Pacer, SpeedTest, time_tracking
from rig.node.stages import FrameStage, KeyframeStage
from rig.video.recorder import Picture

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("node", help="run a camera node (capture, pose inference, publish keypoints)",
                       description="Captures every hardware-triggered frame while a session's trigger train "
                       "runs, labels it with its trigger index, estimates the 33 pose landmarks and publishes "
                       "them over MQTT. With camera.backend = \"simulated\" the camera films the simulated "
                       "walker and follows the simulator's trigger line. Runs until SIGTERM/Ctrl-C.")
    add_config_args(p, "node")
    p.add_argument("--view", choices=["left", "right", "rear", "front"], help="overrides view")
    p.add_argument("--trigger-line", type=Path, help="simulated backend: overrides camera.trigger_line")
    p.add_argument("--benchmark", action="store_true", help="time the pose models on this CPU, print the "
                   "chosen pace (every frame or keyframes, interval, headroom) as JSON and exit")
    p.add_argument("--rate-hz", type=float, help="with --benchmark: the trigger rate to pace for")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class NodeParts:
    camera: Camera
    estimator: Estimator  # one frame, for the diag self-test
    model_name: str
    facing: str | None
    stage: FrameStage | None = None  # what the inference thread runs (default: the estimator per frame)
    picture: Picture | None = None  # what review video shows of a frame (default: the camera's image);
    encoded_video: bool = False  # picamera2's own encoder makes the review video's pictures instead


def build(config: NodeConfig) -> NodeParts:
    """The camera and the estimator for the configured backend."""
    if config.camera.backend == "simulated":
        from rig.node.camera import SimulatedCamera
        from rig.sim.scene import WalkerScene
        scene = WalkerScene(config.view, config.walker.params(), seed=config.walker.seed,
                            script=config.walker.script)
        camera = SimulatedCamera(config.camera.trigger_line, scene, config.camera.width, config.camera.height,
                                 config.camera.miss_fraction, seed=config.walker.seed,
                                 clock=WallClock(config.camera.clock_offset_file), on_train=scene.new_train)
        facing = config.facing or scene.walker(60.0).header(config.view).facing
        return NodeParts(camera, lambda frame, index: frame.landmarks, "simulated walker", facing,
                         picture=walker_picture(config))
    camera = _camera(config)
    pipe = _pose_pipeline(config)
    encoded = config.camera.backend == "picamera2" and config.video.encoder == "mjpeg"
    return NodeParts(camera, lambda frame, index: pipe.process(frame.image), "BlazePose full (TFLite)",
                     config.facing, KeyframeStage(pipe, self_test(pipe, config, camera)),
                     encoded_video=encoded)


def walker_picture(config: NodeConfig) -> Picture:
    """The simulated camera's real frames: the walker drawn where this camera sees it, at
    the review video's size (drawn small, not drawn large and shrunk: a node is 2 ms a frame)."""
    from rig.ops.still import render_skeleton
    w, h = config.camera.width, config.camera.height
    scale = min(1.0, config.video.width_px / w)
    return lambda frame: render_skeleton(frame.landmarks, w, h, scale)


def _camera(config: NodeConfig) -> Camera:
    from rig.node.camera import Picamera2Camera, VideoCamera
    c = config.camera
    if c.backend == "video":
        return VideoCamera(c.video, c.trigger_line, WallClock(c.clock_offset_file), c.video_in_memory)
    return Picamera2Camera(c.width, c.height, c.camera_num, c.analogue_gain, c.trigger_mode_file,
                           video_width_px=config.video.width_px)


def _pose_pipeline(config: NodeConfig):
    """The edge pose pipeline; a missing or corrupt model stops the node with the fetch command."""
    from edge_models.pose import BeltRoi, PosePipeline
    m = config.model
    try:
        return PosePipeline(m.models_dir, threads=m.threads, belt_roi=BeltRoi(*m.belt_roi),
                            delegate_path=str(m.delegate) if m.delegate else None,
                            min_invoke_ms=(m.emulate_detector_ms, m.emulate_landmark_ms))
    except (RuntimeError, ValueError) as e:
        raise CameraError(f"pose model: {e}") from None


def self_test(pipe, config: NodeConfig, camera: Camera, rate_hz: float | None = None) -> Pacer:
    """Time the models on this CPU at the camera's size and choose the pace."""
    width, height = (camera.width, camera.height) if camera.width and camera.height else \
        (config.camera.width, config.camera.height)
    detector_ms, landmark_ms = pipe.time_models(width, height)
    speed = SpeedTest(detector_ms, landmark_ms, time_tracking(width, height, camera.gives_luma))
    pacer = Pacer(speed, pipe.landmark_interpreter.ewma_ms, rate_hz or config.trigger_rate_hz,
                  config.pace_margin, config.max_keyframe_interval)
    p = pacer.pace
    log.info("self-test: detector %.1f ms, landmark %.1f ms, flow %.1f ms per frame (on the %s) -> %s, "
             "interval %d, headroom %.0f %% at %g Hz", detector_ms, landmark_ms, speed.track_ms, flow_image(camera),
             p.mode, p.interval, p.headroom_pct, p.rate_hz)
    return pacer


def flow_image(camera: Camera) -> str:
    """What the optical flow reads between keyframes on this camera."""
    return "camera's luma plane" if camera.gives_luma else "colour frame"


def run_benchmark(config: NodeConfig, rate_hz: float | None) -> int:
    camera = _NoCamera()
    if config.camera.backend == "video":
        from rig.node.camera import VideoCamera
        camera = VideoCamera(config.camera.video, None)
        camera.open()  # the size of the footage
    pacer = self_test(_pose_pipeline(config), config, camera, rate_hz)
    print(json.dumps({**pacer.pace.figures(), "flow_reads": flow_image(camera), "emulated": {
        "detector_ms": config.model.emulate_detector_ms, "landmark_ms": config.model.emulate_landmark_ms}}, indent=1))
    return 0


class _NoCamera:
    width = height = 0
    gives_luma = True  # picamera2's lores stream, at half size with the default review video


def run(args) -> int:
    from rig.malloc import return_freed_frames_to_the_os
    from rig.node.daemon import NodeDaemon
    return_freed_frames_to_the_os()
    config = load_role_config(NodeConfig, args, {
        "view": args.view, "camera.trigger_line": str(args.trigger_line) if args.trigger_line else None})
    if args.benchmark:
        try:
            return run_benchmark(config, args.rate_hz)
        except CameraError as e:
            print(f"gaitrig node: {e}", file=sys.stderr)
            return 2
    try:
        NodeDaemon(config, build(config)).run(stop_event_on_signals())
    except CameraError as e:
        print(f"gaitrig node: {e}", file=sys.stderr)
        return 2
    return 0
