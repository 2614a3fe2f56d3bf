"""A patient's data as one JSON document (the right of access / portability): the patient,
every session tied to them with its condition and gait report, and the audit log about them."""
from __future__ import annotations

from dataclasses import asdict

from rig.clinic.records import Patient, Records

from .database import ReadOnlyDatabase

FORMAT = "gaitrig-patient/1"


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
                         "analysis_error": stored.error if stored else None})
    return {"format": FORMAT, "patient": asdict(patient), "sessions": sessions,
            "audit": [asdict(e) for e in records.store.audit_log(patient.id, limit=10_000)]}
