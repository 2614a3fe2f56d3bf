"""Gait analysis of a closed session: its stored keypoints through the gait engine, at
the belt speed the treadmill reported while the patient walked."""
from __future__ import annotations

import json
import logging
import statistics
from dataclasses import dataclass

from rig.coordinator.export import ExportError, session_tracks
from rig.coordinator.storage import Storage
from rig.gait import GaitInputError, analyze_tracks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionAnalysis:
    belt_speed_m_s: float
    report: dict | None
    error: str | None


def walking_belt_speed(storage: Storage, sid: int, walking_min_m_s: float) -> float:
    """Median of the belt speeds reported at walking speed; 0 for a standing capture."""
    speeds = [v for _, v in storage.belt_profile(sid) if v >= walking_min_m_s]
    return statistics.median(speeds) if speeds else 0.0


def analyze_session(storage: Storage, sid: int, walking_min_m_s: float) -> SessionAnalysis:
    """Run the engine and store its report (or why it could not run) with the session."""
    speed = walking_belt_speed(storage, sid, walking_min_m_s)
    try:
        report = analyze_tracks(session_tracks(storage, sid), speed).to_dict()
    except (ExportError, GaitInputError) as e:
        log.warning("session %d: no gait analysis: %s", sid, e)
        storage.save_report(sid, speed, None, str(e))
        return SessionAnalysis(speed, None, str(e))
    storage.save_report(sid, speed, json.dumps(report), None)
    return SessionAnalysis(speed, report, None)
