"""Gait analysis of a closed session: its stored keypoints through the gait engine, at
the belt speed the treadmill reported while the patient walked, in 3D when the rig is
calibrated (the calibration file is read once, when the coordinator starts)."""
from __future__ import annotations

import json
import logging
import sqlite3
import statistics
from dataclasses import dataclass
from pathlib import Path

from rig.coordinator.export import ExportError, session_tracks
from rig.coordinator.storage import Storage
from rig.gait import GaitInputError, analyze_tracks
from rig.threed.camera import CameraFileError, CameraModel, load_cameras

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionAnalysis:
    belt_speed_m_s: float
    report: dict | None
    error: str | None


Cameras = dict[str, CameraModel]


def load_rig_calibration(path: Path) -> Cameras | None:
    """The rig calibration for 3D reports, or None (2D reports) with one log line saying
    why: no file yet is the normal state of an uncalibrated rig; an unreadable file is an
    error to fix, but the coordinator records and reports sessions in 2D meanwhile."""
    if not Path(path).exists():
        log.info("no rig calibration at %s (analysis.calibration): reports are 2D until "
                 "`gaitrig calibrate solve` writes it and the coordinator is restarted", path)
        return None
    try:
        cameras = load_cameras(path)
    except CameraFileError as e:
        log.error("rig calibration unusable, reports are 2D until it is fixed: %s", e)
        return None
    log.info("rig calibration %s (%s): reports are 3D", path, ", ".join(sorted(cameras)))
    return cameras


def walking_belt_speed(storage: Storage, sid: int, walking_min_m_s: float) -> float:
    """Median of the belt speeds reported at walking speed; 0 for a standing capture."""
    speeds = [v for _, v in storage.belt_profile(sid) if v >= walking_min_m_s]
    return statistics.median(speeds) if speeds else 0.0


def outages(storage: Storage, sid: int, views) -> dict[str, list[tuple[int, int]]]:
    """Per view that sent frames, the trigger indices below the final pulse count it has no
    frame for (a view that sent none is absent from the report altogether)."""
    pulses = storage.session(sid).pulses_sent or 0
    spans = {v: storage.missing_spans(sid, v, pulses) for v in views}
    return {v: s for v, s in spans.items() if s}


def analyze_session(storage: Storage, sid: int, walking_min_m_s: float,
                    cameras: Cameras | None = None) -> SessionAnalysis:
    """Run the engine (3D with ``cameras``, the rig calibration) and store its report (or
    why it could not run) with the session. A
    failure of the engine itself is recorded as the reason too, so no session is left
    without one; only a database error (the report could not be stored) propagates."""
    speed = walking_belt_speed(storage, sid, walking_min_m_s)
    try:
        tracks = session_tracks(storage, sid)
        report = analyze_tracks(tracks, speed, cameras,
                                outages=outages(storage, sid, tracks)).to_dict()
        report_json = json.dumps(report, allow_nan=False)
    except (ExportError, GaitInputError) as e:
        return _failed(storage, sid, speed, str(e))
    except sqlite3.Error:
        raise
    except Exception as e:  # an engine bug on this session's data: say so, keep the daemon
        log.exception("session %d: the gait analysis failed", sid)
        return _failed(storage, sid, speed, f"the gait analysis failed ({type(e).__name__}: {e}); "
                       "the keypoints are stored and can be exported")
    storage.save_report(sid, speed, report_json, None)
    return SessionAnalysis(speed, report, None)


def _failed(storage: Storage, sid: int, speed: float, error: str) -> SessionAnalysis:
    log.warning("session %d: no gait analysis: %s", sid, error)
    storage.save_report(sid, speed, None, error)
    return SessionAnalysis(speed, None, error)


def analyze_pending(storage: Storage, walking_min_m_s: float, cameras: Cameras | None = None) -> list[int]:
    """Analyse every closed session that has neither a report nor a reason why not (the
    coordinator stopped, or the disk was full, between closing it and storing its report);
    committed one by one. Returns their ids."""
    done = []
    for sid in storage.unanalysed_sessions():
        log.info("session %d was closed but never analysed: analysing it now", sid)
        analyze_session(storage, sid, walking_min_m_s, cameras)
        storage.commit()
        done.append(sid)
    return done
