"""What each daemon tells a technician: its figures, its problems, its self-tests, the
settings it can change live and (nodes) a still frame. One function per daemon, reading the
daemon's own counters; the daemons only create a ``DiagAgent`` with these hooks.

Problems are judged from the figures alone (pure), so the rules can be read — and tested —
without a daemon.
"""
from __future__ import annotations

import os
import queue
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rig.ops import health as h
from rig.ops.diag import Check, DiagHooks

if TYPE_CHECKING:
    from firmware_bridge.bridge import Bridge
    from rig.coordinator.daemon import Coordinator
    from rig.node.daemon import NodeDaemon

CAMERA_LOST_S = 2.0  # no frame this long while a train runs: the camera stopped (60 fps = 120 pulses)
BACKLOG_SHARE = 0.25  # inference queue this full: inference is not keeping up
SPOOL_SHARE = 0.5  # spool this full: the broker has been away long enough to worry
INBOX_BACKLOG = 2000  # coordinator messages waiting: the database is not keeping up
SIM_STILL_RATE_HZ = 60.0


def _ms_since(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


# -- node --------------------------------------------------------------------------------------
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
            **node.stage.figures(),
            "last_frame_age_s": age,
            "spool_messages": spool.count, "spool_mb": round(spool.bytes / 1e6, 3),
            "camera_error": st.camera_error}


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
    return Check("aim", check.status != "moved", check.message, _ms_since(t0))


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
    from rig.node.camera import CapturedFrame
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
        return Check("model", False, f"{node.model_name}: inference failed: {e!r}", _ms_since(t0))
    ms = _ms_since(t0)
    if node.simulated:
        ok = lm is not None and lm.shape == (33, 4)
        return Check("model", ok, "simulated walker rendered 33 landmarks" if ok else "walker rendered nothing", ms)
    found = "a person found" if lm is not None else "no person in the test frame"
    return Check("model", True, f"{node.model_name} inferred one frame in {ms} ms ({found})", ms)


# -- bridge ------------------------------------------------------------------------------------
def bridge_hooks(bridge: "Bridge") -> DiagHooks:
    return DiagHooks(figures=lambda: bridge_figures(bridge), problems=bridge_problems,
                     selftest=lambda: bridge_selftest(bridge),
                     live={"serial.silent_after_s": None, "serial.command_timeout_s": None,
                           "serial.command_retries": None},
                     state_dir=h.state_dir())


def bridge_figures(bridge: "Bridge") -> dict[str, Any]:
    link, drift = bridge.link, bridge.link.clocksync.drift_ppm
    belt, trig = bridge._belt, bridge._trigger
    return {"serial_port": link.port, "serial_connected": link.connected,
            "serial_rejected_frames": link.rejected, "serial_lost_frames": link.lost,
            "serial_reconnects": link.reconnects, "serial_retransmits": link.retransmits,
            "serial_invalid_messages": sum(link.invalid.values()), "serial_handler_errors": link.errors,
            "serial_reader_alive": link.alive, "controller_resets": link.resets,
            "rejected_commands": sum(bridge.bus.rejected.values()),
            "controller_clock_drift_ppm": None if drift is None else round(drift, 2),
            "controller_silent": link.silent, "belt_running": belt.running if belt else None,
            "belt_speed_m_s": belt.speed_m_s if belt else None, "trigger_armed": trig.armed if trig else None,
            "firmware": link.hello.firmware if link.hello else None}


def bridge_problems(f: dict) -> dict[str, str]:
    out = {}
    if not f.get("serial_reader_alive", True):
        out["serial_reader_dead"] = "the serial reading thread has ended; restart the bridge"
    elif not f["serial_connected"]:
        out["serial_down"] = f"{f['serial_port']} is not open; reopening with backoff"
    elif f["controller_silent"]:
        out["controller_silent"] = "no heartbeat from the treadmill controller"
    return out


def bridge_selftest(bridge: "Bridge") -> list[Check]:
    from firmware_bridge.protocol import messages as m
    t0 = time.perf_counter()
    result = bridge.link.command(m.Ping())
    ms = _ms_since(t0)
    detail = f"controller answered a ping in {ms} ms ({result.tries} tries)" if result.ok \
        else f"no answer to a ping on {bridge.link.port}: {result.error}"
    return [Check("serial", result.ok, detail, ms)]


# -- coordinator -------------------------------------------------------------------------------
def coordinator_hooks(coord: "Coordinator") -> DiagHooks:
    cfg = coord.config
    return DiagHooks(figures=lambda: coordinator_figures(coord), problems=coordinator_problems,
                     selftest=lambda: [database_check(coord)],
                     live={f"session.{k}": None for k in ("walking_speed_min_m_s", "start_after_s", "fps",
                                                           "end_timeout_s")},
                     state_dir=h.state_dir(Path(cfg.storage.database).parent))


def coordinator_figures(coord: "Coordinator") -> dict[str, Any]:
    db = Path(coord.config.storage.database)
    size = sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    out: dict[str, Any] = {"session_state": coord.machine.phase.value, "session_id": coord.session_id,
                           "last_session_id": coord.last_session_id, "inbox_backlog": coord.inbox.qsize(),
                           "db_mb": round(size / 1e6, 3)}
    frames = dict(coord.session_frames)
    out.update({f"frames_received_{v}": frames.get(v, 0) for v in coord.config.session.views})
    disk = coord.disk
    out.update({"frame_conflicts": sum(coord.machine.conflicts.values()), "frames_lost_db": disk.frames_lost,
                "db_write_failures": disk.failures, "db_frames_paused": disk.paused, "db_problem": disk.problem,
                "internal_errors": coord.internal_errors})
    out.update({f"rejected_{kind}": n for kind, n in sorted(coord.bus.rejected.items())})
    return out


def coordinator_problems(f: dict) -> dict[str, str]:
    out = {}
    if f["inbox_backlog"] > INBOX_BACKLOG:
        out["inbox_backlog"] = f"{f['inbox_backlog']} messages wait for the database"
    if f["db_problem"]:
        kind = "disk_full" if f["db_problem"].startswith("disk full") else "database_error"
        out[kind] = f"{f['db_problem']}; {f['frames_lost_db']} frames lost"
    if f["frame_conflicts"]:
        out["frame_conflicts"] = (f"{f['frame_conflicts']} frames of session {f['last_session_id']} differ from the "
                                  "one already stored for their index (first kept): a node misbehaves or a "
                                  "forged frame")
    return out


def database_check(coord: "Coordinator", timeout_s: float = 3.0) -> Check:
    """Run on the coordinator's worker, with its own connection (a second connection would
    wait behind the worker's open transaction while recording): commit what is pending — a
    real write — and take the write lock. An answer at all proves the worker is not hung."""
    done: queue.Queue[Check] = queue.Queue(1)
    coord.inbox.put(("diag", lambda storage: _commit_check(storage, coord.config.storage.database, done)))
    try:
        return done.get(timeout=timeout_s)
    except queue.Empty:
        return Check("database", False, f"the coordinator's worker did not answer within {timeout_s} s (hung?)")


def _commit_check(storage, path: Path, done: "queue.Queue[Check]") -> None:
    t0 = time.perf_counter()
    try:
        storage.commit()
        storage.conn.execute("COMMIT")
        storage.conn.execute("BEGIN IMMEDIATE")  # the next regular commit ends it
    except sqlite3.Error as e:
        done.put(Check("database", False, f"{path}: commit failed: {e}", _ms_since(t0)))
        raise  # the worker rolls back, counts the frames lost and announces it
    done.put(_writable_check(path, t0))


def _writable_check(path: Path, t0: float) -> Check:
    if not os.access(Path(path).parent, os.W_OK):
        return Check("database", False, f"{Path(path).parent} is not writable (journal files)", _ms_since(t0))
    return Check("database", True, f"{path}: committed and took the write lock", _ms_since(t0))
