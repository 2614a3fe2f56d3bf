"""``gaitrig node``: the camera-node daemon for one view."""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from rig.config import NodeConfig
from rig.daemon import add_config_args, load_role_config, stop_event_on_signals
from rig.node.camera import Camera, CameraError
from rig.node.clock import WallClock
from rig.node.daemon import Estimator

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
    p.set_defaults(func=run)


@dataclass(frozen=True)
class NodeParts:
    camera: Camera
    estimator: Estimator
    model_name: str
    facing: str | None


def build(config: NodeConfig) -> NodeParts:
    """The camera and the estimator for the configured backend."""
    if config.camera.backend == "simulated":
        from rig.node.camera import SimulatedCamera
        from rig.sim.scene import WalkerScene
        from rig.sim.walker import WalkerParams
        w = config.walker
        scene = WalkerScene(config.view, WalkerParams(cadence_steps_per_min=w.cadence_steps_per_min,
                                                      belt_speed_m_s=w.belt_speed_m_s),
                            seed=config.walker.seed)
        camera = SimulatedCamera(config.camera.trigger_line, scene, config.camera.width, config.camera.height,
                                 config.camera.miss_fraction, seed=config.walker.seed,
                                 clock=WallClock(config.camera.clock_offset_file))
        facing = config.facing or scene.walker(60.0).header(config.view).facing
        return NodeParts(camera, lambda frame, index: frame.landmarks, "simulated walker", facing)
    return NodeParts(_camera(config), _pose_estimator(config), "BlazePose full (TFLite)", config.facing)


def _camera(config: NodeConfig) -> Camera:
    from rig.node.camera import Picamera2Camera, VideoCamera
    c = config.camera
    if c.backend == "video":
        return VideoCamera(c.video, c.trigger_line, WallClock(c.clock_offset_file))
    return Picamera2Camera(c.width, c.height, c.camera_num, c.analogue_gain, c.trigger_mode_file)


def _pose_estimator(config: NodeConfig) -> Estimator:
    """The edge pose pipeline; a missing or corrupt model stops the node with the fetch command."""
    from edge_models.pose import BeltRoi, PosePipeline
    m = config.model
    try:
        pipe = PosePipeline(m.models_dir, threads=m.threads, belt_roi=BeltRoi(*m.belt_roi),
                            delegate_path=str(m.delegate) if m.delegate else None)
    except (RuntimeError, ValueError) as e:
        raise CameraError(f"pose model: {e}") from None
    return lambda frame, index: pipe.process(frame.image)


def run(args) -> int:
    from rig.node.daemon import NodeDaemon
    config = load_role_config(NodeConfig, args, {
        "view": args.view, "camera.trigger_line": str(args.trigger_line) if args.trigger_line else None})
    try:
        NodeDaemon(config, build(config)).run(stop_event_on_signals())
    except CameraError as e:
        print(f"gaitrig node: {e}", file=sys.stderr)
        return 2
    return 0
