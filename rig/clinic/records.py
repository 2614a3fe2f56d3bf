"""Patients and the condition each recorded session was walked in.

A session is tied to a patient either afterwards (:meth:`Records.assign`) or before the walk:
:meth:`Records.set_pending` remembers the patient and condition for *the next session the
coordinator records* (the first one with an id above the newest at the time of picking), and
:meth:`Records.claim_pending` gives it that session once it appears — called whenever the
pages list sessions, so the clinician sees it as soon as the walk shows up.
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from .model import ClinicError, Condition, PatientFields
from .store import ClinicStore

_PATIENT_COLS = "id, name, birth_date, clinic_id, notes, created_t"


@dataclass(frozen=True)
class Patient:
    id: int
    name: str
    birth_date: str | None
    clinic_id: str | None
    notes: str
    created_t: float


@dataclass(frozen=True)
class Assignment:
    session_id: int
    patient_id: int
    condition: Condition
    assigned_by: str
    assigned_t: float


@dataclass(frozen=True)
class Pending:
    patient_id: int
    condition: Condition
    after_session_id: int
    set_by: str
    set_t: float


class Records:
    def __init__(self, store: ClinicStore):
        self.store = store

    # -- patients -------------------------------------------------------------------------------
    def create(self, fields: PatientFields, by: str) -> Patient:
        try:
            with self.store.write() as conn:
                cur = conn.execute("INSERT INTO patients (name, birth_date, clinic_id, notes, created_t) "
                                   "VALUES (?, ?, ?, ?, ?)",
                                   (fields.name, fields.birth_date, fields.clinic_id, fields.notes, time.time()))
                pid = int(cur.lastrowid)
                self.store.audit(by, "create patient", pid, conn=conn)
        except sqlite3.IntegrityError:
            raise ClinicError(f"another patient already has clinic ID {fields.clinic_id!r}") from None
        return self.patient(pid)

    def update(self, patient_id: int, fields: PatientFields, by: str) -> None:
        try:
            with self.store.write() as conn:
                conn.execute("UPDATE patients SET name = ?, birth_date = ?, clinic_id = ?, notes = ? WHERE id = ?",
                             (fields.name, fields.birth_date, fields.clinic_id, fields.notes, patient_id))
                self.store.audit(by, "edit patient", patient_id, conn=conn)
        except sqlite3.IntegrityError:
            raise ClinicError(f"another patient already has clinic ID {fields.clinic_id!r}") from None

    def patient(self, patient_id: int) -> Patient | None:
        with self.store.read() as conn:
            row = conn.execute(f"SELECT {_PATIENT_COLS} FROM patients WHERE id = ?", (patient_id,)).fetchone()
        return Patient(*row) if row else None

    def find(self, text: str = "", limit: int = 50) -> list[Patient]:
        """Patients whose name or clinic ID contains ``text`` in any case (all when empty),
        by name. Matched in Python: SQLite's LIKE folds only ASCII, and names are not."""
        needle = " ".join(text.split()).casefold()
        with self.store.read() as conn:
            rows = conn.execute(f"SELECT {_PATIENT_COLS} FROM patients ORDER BY name, id").fetchall()
        found = [Patient(*r) for r in rows if needle in f"{r[1]}\n{r[3] or ''}".casefold()]
        return found[:limit]

    def erase(self, patient_id: int, by: str) -> list[int] | None:
        """Delete the patient, their conditions and any pending pick, and list their sessions
        as erased — in one transaction, so no recording is left tied to nobody: the coordinator
        deletes those sessions' rows and the nodes their video from that list
        (:func:`rig.clinic.store.erased_session_ids`). The audit log keeps the bare id and the
        number of sessions, no name. Returns the erased session ids; None without the patient."""
        with self.store.write() as conn:
            sids = [r[0] for r in conn.execute("SELECT session_id FROM assignments WHERE patient_id = ? "
                                               "ORDER BY session_id", (patient_id,))]
            if conn.execute("DELETE FROM patients WHERE id = ?", (patient_id,)).rowcount == 0:
                return None
            now = time.time()
            conn.executemany("INSERT OR IGNORE INTO erased_sessions VALUES (?, ?)", [(s, now) for s in sids])
            self.store.audit(by, f"erase patient ({len(sids)} session{'' if len(sids) == 1 else 's'})", patient_id,
                             conn=conn)
        return sids

    def erased(self) -> set[int]:
        """Sessions erased with their patient: the pages hide them at once, even before the
        coordinator has deleted their rows."""
        with self.store.read() as conn:
            return {r[0] for r in conn.execute("SELECT session_id FROM erased_sessions")}

    # -- sessions of patients ---------------------------------------------------------------------
    def assign(self, session_id: int, patient_id: int, condition: Condition, by: str) -> None:
        try:
            with self.store.write() as conn:
                conn.execute("INSERT OR REPLACE INTO assignments VALUES (?, ?, ?, ?, ?, ?)",
                             (session_id, patient_id, condition.kind, condition.label, by, time.time()))
                self.store.audit(by, f"assign session ({condition.kind})", patient_id, session_id, conn=conn)
        except sqlite3.IntegrityError:
            raise ClinicError(f"there is no patient {patient_id}") from None

    def unassign(self, session_id: int, by: str) -> None:
        with self.store.write() as conn:
            row = conn.execute("SELECT patient_id FROM assignments WHERE session_id = ?", (session_id,)).fetchone()
            conn.execute("DELETE FROM assignments WHERE session_id = ?", (session_id,))
            if row:
                self.store.audit(by, "unassign session", row[0], session_id, conn=conn)

    def assignments(self, session_ids: list[int] | None = None, patient_id: int | None = None) -> dict[int, Assignment]:
        """Session id → assignment, for the given sessions or one patient's."""
        sql, args = "SELECT session_id, patient_id, kind, label, assigned_by, assigned_t FROM assignments", []
        if patient_id is not None:
            sql, args = sql + " WHERE patient_id = ?", [patient_id]
        elif session_ids is not None:
            sql, args = sql + f" WHERE session_id IN ({','.join('?' * len(session_ids))})", list(session_ids)
        with self.store.read() as conn:
            rows = conn.execute(sql, args).fetchall()
        return {r[0]: Assignment(r[0], r[1], Condition(r[2], r[3]), r[4], r[5]) for r in rows}

    def patients_by_id(self, ids: set[int]) -> dict[int, Patient]:
        if not ids:
            return {}
        with self.store.read() as conn:
            rows = conn.execute(f"SELECT {_PATIENT_COLS} FROM patients WHERE id IN ({','.join('?' * len(ids))})",
                                list(ids)).fetchall()
        return {r[0]: Patient(*r) for r in rows}

    # -- the next walk ---------------------------------------------------------------------------
    def set_pending(self, patient_id: int, condition: Condition, newest_session_id: int, by: str) -> None:
        try:
            with self.store.write() as conn:
                conn.execute("INSERT OR REPLACE INTO pending VALUES (1, ?, ?, ?, ?, ?, ?)",
                             (patient_id, condition.kind, condition.label, newest_session_id, by, time.time()))
                self.store.audit(by, f"pick for the next walk ({condition.kind})", patient_id, conn=conn)
        except sqlite3.IntegrityError:
            raise ClinicError(f"there is no patient {patient_id}") from None

    def clear_pending(self, by: str) -> None:
        with self.store.write() as conn:
            conn.execute("DELETE FROM pending")

    def pending(self) -> Pending | None:
        with self.store.read() as conn:
            row = conn.execute("SELECT patient_id, kind, label, after_session_id, set_by, set_t FROM pending").fetchone()
        return Pending(row[0], Condition(row[1], row[2]), row[3], row[4], row[5]) if row else None

    def claim_pending(self, session_ids: list[int]) -> int | None:
        """Give the pending pick to the first of ``session_ids`` (the coordinator's sessions)
        recorded after it was made and not yet assigned; returns that session's id."""
        with self.store.write() as conn:
            row = conn.execute("SELECT patient_id, kind, label, after_session_id, set_by FROM pending").fetchone()
            if row is None:
                return None
            taken = {r[0] for r in conn.execute("SELECT session_id FROM assignments UNION "
                                                "SELECT session_id FROM erased_sessions")}
            fresh = sorted(s for s in session_ids if s > row[3] and s not in taken)
            if not fresh:
                return None
            conn.execute("INSERT INTO assignments VALUES (?, ?, ?, ?, ?, ?)",
                         (fresh[0], row[0], row[1], row[2], row[4], time.time()))
            conn.execute("DELETE FROM pending")
            self.store.audit(row[4], f"assign session ({row[1]}) picked before the walk", row[0], fresh[0], conn=conn)
        return fresh[0]
