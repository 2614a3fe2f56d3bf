"""A patient's data, for the right of access and portability: as one JSON document (the
patient, every session tied to them with its condition and gait report, the audit log about
them), or as one ZIP archive that adds what was recorded — each session's keypoint files
(gaitrig-keypoints/1, the files `gaitrig export` writes, so `gaitrig analyze` re-analyses
them) and its belt-speed profile. The archive is written to a file, one view of one session
in memory at a time, so a patient with many long sessions never sits in RAM."""
from __future__ import annotations

import csv
import io
import json
import sqlite3
import zipfile
from contextlib import closing
from dataclasses import asdict
from typing import IO, Any

from rig.clinic.records import Patient, Records
from rig.coordinator.export import ExportError, iter_view_tracks, write_view
from rig.coordinator.storage import Storage

from .database import DatabaseUnavailable, ReadOnlyDatabase

FORMAT = "gaitrig-patient/1"
NOT_INCLUDED = ("review video: it stays on the camera nodes that recorded it (deleted after the nodes' "
                "retention period); play it from the session's report on the tablet")
BELT_COLUMNS = ("t_unix_s", "t_s", "running", "speed_m_s", "incline_pct", "estop")


def patient_export(records: Records, db: ReadOnlyDatabase, patient: Patient) -> dict:
    sessions = []
    for sid, a in sorted(records.assignments(patient_id=patient.id).items()):
        record = db.session(sid)
        stored = record.stored if record else None
        sessions.append({"session_id": sid, "condition": a.condition.kind, "label": a.condition.label,
                         "assigned_by": a.assigned_by, "assigned_t": a.assigned_t,
                         "started_t": record.session.started_t if record else None,
                         "ended_t": record.session.ended_t if record else None,
                         "report": stored.report if stored else None,
                         "analysis_error": stored.error if stored else None,
                         "analysis_belt_speed_m_s": stored.belt_speed_m_s if stored else None})
    return {"format": FORMAT, "patient": asdict(patient), "sessions": sessions,
            "audit": [asdict(e) for e in records.store.audit_log(patient.id, limit=10_000)]}


def write_patient_archive(out: IO[bytes], records: Records, db: ReadOnlyDatabase, patient: Patient) -> dict:
    """The ZIP archive onto ``out``; returns its ``patient.json`` (the JSON export plus the
    manifest: every file of the archive, per session the frames written per view, and what
    the archive does not hold). Each session's files are under ``session-ID/``."""
    document = patient_export(records, db, patient)
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        if document["sessions"]:
            with closing(_open(db)) as storage:
                for session in document["sessions"]:
                    session.update(_write_session(zf, storage, session, files))
        document["files"] = files + [{"name": "patient.json", "content": "this manifest"}]
        document["not_included"] = [NOT_INCLUDED]
        zf.writestr("patient.json", json.dumps(document, ensure_ascii=False, indent=1) + "\n")
    return document


def _open(db: ReadOnlyDatabase) -> Storage:
    db.check()  # no database, or not the coordinator's: the tablet's usual message
    try:
        return Storage.read_only(db.path)
    except sqlite3.Error as e:
        raise DatabaseUnavailable(f"cannot read {db.path}: {e}") from None


def _write_session(zf: zipfile.ZipFile, storage: Storage, session: dict, files: list[dict]) -> dict:
    """One session's files; returns what the manifest says of them in the session's entry."""
    sid = session["session_id"]
    row = storage.session(sid)
    if row is None:  # assigned, but no longer (or not yet) in the coordinator's database
        return {"frames": {}, "keypoints_error": f"session {sid} is not in the coordinator's database"}
    folder = f"session-{sid}"
    frames: dict[str, int] = {}
    entry: dict[str, Any] = {"frames": frames, "keypoints_error": None, "first_pulse_t": row.first_pulse_t}
    try:
        for view, track in iter_view_tracks(storage, sid):
            name = f"{folder}/keypoints-{view}.jsonl"
            # zip64 from the start: the size is not known before the file is written
            with zf.open(name, "w", force_zip64=True) as raw, io.TextIOWrapper(raw, encoding="utf-8") as f:
                frames[view] = write_view(f, track)
            files.append({"name": name, "content": f"keypoint frames of the {view} view (gaitrig-keypoints/1)",
                          "frames": frames[view]})
    except ExportError as e:
        entry["keypoints_error"] = str(e)
    name = f"{folder}/belt.csv"
    with zf.open(name, "w") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
        samples = _write_belt(f, storage, sid, row.first_pulse_t)
    files.append({"name": name, "content": "belt samples: " + ", ".join(BELT_COLUMNS)
                  + " (t_s from the first trigger pulse, as the keypoint files' t)", "samples": samples})
    if session["report"] is not None:
        name = f"{folder}/report.json"
        zf.writestr(name, json.dumps(session["report"], indent=1) + "\n")
        files.append({"name": name, "content": "the gait report stored for the session"})
    return entry


def _write_belt(f: IO[str], storage: Storage, sid: int, first_pulse_t: float | None) -> int:
    """The belt's samples as CSV, times as stored (repr: no digit lost); returns their count."""
    out = csv.writer(f, lineterminator="\n")
    out.writerow(BELT_COLUMNS)
    n = 0
    for t, running, speed, incline, estop in storage.belt_samples(sid):
        out.writerow([repr(t), "" if first_pulse_t is None else repr(t - first_pulse_t), int(running),
                      repr(speed), repr(incline), int(estop)])
        n += 1
    return n
