"""What a camera node tells a technician: its figures, its problems, its self-tests
(camera, model, aim), the settings it can change live and a still frame. The node builds
these ``DiagHooks`` and hands them to ``rig.ops.diag.DiagAgent``, which knows nothing of
nodes.

Problems are judged from the figures alone (pure), so the rules can be read — and tested —
without a daemon.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rig.node.camera import CapturedFrame
from rig.ops import health as h
from rig.ops.diag import Check, DiagHooks, ms_since

if TYPE_CHECKING:
    from rig.node.daemon import NodeDaemon

CAMERA_LOST_S = 2.0  # no frame this long while a train runs: the camera stopped (60 fps = 120 pulses)
BACKLOG_SHARE = 0.25  # inference queue this full: inference is not keeping up
SPOOL_SHARE = 0.5  # spool this full: the broker has been away long enough to worry
SIM_STILL_RATE_HZ = 60.0


def node_hooks(node: "NodeDaemon") -> DiagHooks:
    cfg = node.config

    def set_spool_max(mb: float) -> None:
        node.publisher.spool.max_bytes = int(mb * 1e6)

    return DiagHooks(figures=lambda: node_figures(node),
                     problems=lambda f: node_problems(f, cfg.backlog_max_mb, cfg.spool_max_mb),
                     selftest=lambda: node_selftest(node), still=lambda: node_still(node),
                     live={"end_grace_s": None, "spool_max_mb": set_spool_max},
                     state_dir=h.state_dir(cfg.spool_dir))


def node_figures(node: "NodeDaemon") -> dict[str, Any]:
    st, train, spool, crops = node.stats, node.train, node.publisher.spool, node.frames.spool
    latencies = list(st.latency_ms)
    age = None if st.last_frame_mono is None else round(time.monotonic() - st.last_frame_mono, 2)
    return {"camera": node.camera.name, "session_id": train.session_id if train else node.recording_session,
            "train_running": train is not None and train.pulses_sent is None,
            "frames_in": st.frames_in, "frames_out": st.frames_out, "dropped": st.dropped,
            "missed_triggers": st.missed_triggers + (train.indexer.missed if train else 0),
            "frames_lost": node.publisher.refused,
            "inference_latency_ms_p50": h.percentile_ms(latencies, 50),
            "inference_latency_ms_p95": h.percentile_ms(latencies, 95),
            "publish_latency_ms_p95": h.percentile_ms(list(st.publish_latency_ms), 95),
            "inference_backlog": len(node.frames), "inference_backlog_mb": round(node.frames.memory_bytes / 1e6, 1),
            "crop_spool_frames": crops.count if crops else 0, "crop_spool_mb": round(crops.bytes / 1e6, 1) if crops else 0.0,
            "frames_spooled": st.spooled, "session_dropped": train.dropped if train else 0,
            "session_missed_triggers": train.indexer.missed if train else None,  # null: no train running
            "session_frames_out": train.published if train else None,
            **node.stage.figures(), **node.overhead.figures(),
            "last_frame_age_s": age,
            "spool_messages": spool.count, "spool_mb": round(spool.bytes / 1e6, 3),
            "camera_error": st.camera_error, **video_figures(node)}


def video_figures(node: "NodeDaemon") -> dict[str, Any]:
    """Review video kept on this node: pictures written, pictures not kept (the encoder fell
    behind, or a session outgrew the disk bound), sessions forgotten, a disk error."""
    if node.video is None:
        return {"video_enabled": False}
    v = node.video.recorder.stats
    return {"video_enabled": True, "video_recorded": v.recorded, "video_not_kept": v.not_kept,
            "video_sessions_deleted": v.deleted_sessions, "video_error": v.error, "video_url": node.video.url}


def node_problems(f: dict, backlog_max_mb: float, spool_max_mb: float) -> dict[str, str]:
    out = {}
    if f["camera_error"]:
        out["camera_failed"] = f["camera_error"]
    if f["train_running"] and (f["last_frame_age_s"] is None or f["last_frame_age_s"] > CAMERA_LOST_S):
        out["camera_lost"] = (f"no frame for {f['last_frame_age_s']} s while the trigger train runs"
                              if f["last_frame_age_s"] is not None else "no frame since start while a train runs")
    if f["inference_backlog_mb"] > BACKLOG_SHARE * backlog_max_mb:
        out["inference_backlog"] = (f"{f['inference_backlog']} frames ({f['inference_backlog_mb']:.0f} MB) wait "
                                    f"for inference; beyond {backlog_max_mb:.0f} MB they wait on disk as crops")
    if f.get("crop_spool_frames"):
        out["inference_behind"] = (f"{f['crop_spool_frames']} frames ({f['crop_spool_mb']:.0f} MB) wait on disk as "
                                   "crops; they are finished after the belt stops")
    if f.get("session_dropped"):
        out["frames_dropped"] = f"{f['session_dropped']} frames of this session lost (a spool is full)"
    if f["spool_mb"] > SPOOL_SHARE * spool_max_mb:
        out["spool_filling"] = f"{f['spool_mb']:.1f} of {spool_max_mb:.0f} MB spooled: broker unreachable?"
    if f["frames_lost"]:
        out["frames_lost"] = f"{f['frames_lost']} frames lost: the spool was full"
    if f.get("video_error"):
        out["video_disk"] = f"review video cannot be written: {f['video_error']}"
    return out


def _sim_landmarks(node: "NodeDaemon") -> np.ndarray | None:
    """The walker's pose now, for a simulated camera that has not filmed anything yet."""
    k = int(time.time() * SIM_STILL_RATE_HZ) % int(600 * SIM_STILL_RATE_HZ)
    return node.camera.scene(SIM_STILL_RATE_HZ, k)


def node_still(node: "NodeDaemon") -> tuple[bytes, int, int]:
    """The last frame a real camera delivered, or the simulated walker's skeleton."""
    from rig.ops.still import encode_jpeg, render_skeleton  # OpenCV: only when asked
    last = node.stats.last_frame
    if node.simulated:
        lm = last.landmarks if last is not None and last.landmarks is not None else _sim_landmarks(node)
        image = render_skeleton(lm, node.camera.width, node.camera.height)
    elif last is not None and last.image is not None:
        image = last.image
    else:
        raise RuntimeError("no frame captured yet: a hardware-triggered camera exposes only on trigger "
                           "pulses; start the belt (or a manual session) and ask again")
    return encode_jpeg(image), image.shape[1], image.shape[0]


def node_selftest(node: "NodeDaemon") -> list[Check]:
    last = node.stats.last_frame
    image = None if node.simulated or last is None else last.image
    return [_camera_check(node), _model_check(node),
            aim_check(image, h.state_dir(node.config.spool_dir), node.simulated)]


def aim_check(image: np.ndarray | None, state_dir: Path, simulated: bool = False) -> Check:
    """Has the camera moved since calibration? The last frame against the still stored at
    calibration time (``<state dir>/calibration_still.png``; rig.calibration.moved)."""
    from rig.calibration.moved import CALIBRATION_STILL, CameraMoveDetector
    if simulated:
        return Check("aim", True, "simulated camera: nothing can move")
    ref_path = Path(state_dir) / CALIBRATION_STILL
    if not ref_path.is_file():
        return Check("aim", True, f"no calibration still at {ref_path}: cannot tell whether the camera moved")
    if image is None:
        return Check("aim", True, "no frame captured yet to compare with the calibration still")
    import cv2
    t0 = time.perf_counter()
    ref = cv2.imread(str(ref_path), cv2.IMREAD_GRAYSCALE)
    if ref is None:
        return Check("aim", False, f"{ref_path}: not a readable image")
    check = CameraMoveDetector().check(ref, image)
    return Check("aim", check.status != "moved", check.message, ms_since(t0))


def _camera_check(node: "NodeDaemon") -> Check:
    f = node_figures(node)
    if "camera_lost" in node_problems(f, node.config.backlog_max_mb, node.config.spool_max_mb):
        return Check("camera", False, f"{node.camera.name}: no frame for {f['last_frame_age_s']} s during a train")
    seen = "no frame yet (frames come only with trigger pulses)" if f["last_frame_age_s"] is None \
        else f"last frame {f['last_frame_age_s']} s ago, {f['frames_in']} since start"
    return Check("camera", True, f"{node.camera.name} open, {node.camera.width}x{node.camera.height}; {seen}")


def _model_check(node: "NodeDaemon") -> Check:
    """Runs the node's own estimator on one frame (the last real image, a blank one, or the
    walker's pose for a simulated node), sharing the inference thread's lock."""
    last = node.stats.last_frame
    if node.simulated:
        frame = CapturedFrame(time.time(), None, _sim_landmarks(node))
    elif last is not None and last.image is not None:
        frame = last
    else:
        frame = CapturedFrame(time.time(), np.zeros((node.camera.height, node.camera.width, 3), np.uint8))
    t0 = time.perf_counter()
    try:
        with node.infer_lock:
            lm = node.parts.estimator(frame, 0)
    except Exception as e:  # a broken model is exactly what this check is for
        return Check("model", False, f"{node.model_name}: inference failed: {e!r}", ms_since(t0))
    ms = ms_since(t0)
    if node.simulated:
        ok = lm is not None and lm.shape == (33, 4)
        return Check("model", ok, "simulated walker rendered 33 landmarks" if ok else "walker rendered nothing", ms)
    found = "a person found" if lm is not None else "no person in the test frame"
    return Check("model", True, f"{node.model_name} inferred one frame in {ms} ms ({found})", ms)
