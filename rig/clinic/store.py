"""The clinic's SQLite file: accounts, log-in sessions, patients, conditions, the audit log.

Separate from the coordinator's recording database on purpose: the web daemon owns this file
and writes it, while it can only read recordings. Migrations work as in
:mod:`rig.coordinator.storage` (append-only list, ``PRAGMA user_version``). Every call opens
its own short connection (WAL, foreign keys on), so one store is shared by the server's
threads; writes take the lock up front (``BEGIN IMMEDIATE``) so read-modify-write steps such
as counting failed log-ins cannot interleave.
"""
from __future__ import annotations

import secrets
import sqlite3
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from rig.coordinator.storage import migrate

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE,
        role          TEXT NOT NULL CHECK (role IN ('clinician', 'technician', 'admin')),
        password_hash TEXT NOT NULL,
        failed_logins INTEGER NOT NULL DEFAULT 0,
        locked_until  REAL,
        created_t     REAL NOT NULL
    );
    CREATE TABLE login_sessions (
        token_hash  TEXT PRIMARY KEY,
        user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf_token  TEXT NOT NULL,
        created_t   REAL NOT NULL,
        last_seen_t REAL NOT NULL
    );
    CREATE TABLE patients (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL,
        birth_date TEXT,
        clinic_id  TEXT UNIQUE,
        notes      TEXT NOT NULL DEFAULT '',
        created_t  REAL NOT NULL
    );
    CREATE TABLE assignments (
        session_id  INTEGER PRIMARY KEY,
        patient_id  INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
        kind        TEXT NOT NULL CHECK (kind IN ('barefoot', 'shoes', 'orthotic')),
        label       TEXT,
        assigned_by TEXT NOT NULL,
        assigned_t  REAL NOT NULL
    );
    CREATE INDEX assignments_patient ON assignments(patient_id);
    CREATE TABLE pending (
        only_one         INTEGER PRIMARY KEY CHECK (only_one = 1),
        patient_id       INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
        kind             TEXT NOT NULL,
        label            TEXT,
        after_session_id INTEGER NOT NULL,
        set_by           TEXT NOT NULL,
        set_t            REAL NOT NULL
    );
    CREATE TABLE audit (
        id         INTEGER PRIMARY KEY,
        t          REAL NOT NULL,
        username   TEXT NOT NULL,
        action     TEXT NOT NULL,
        patient_id INTEGER,
        session_id INTEGER
    );
    CREATE INDEX audit_patient ON audit(patient_id, t);
    """,
    """
    CREATE TABLE erased_sessions (
        session_id INTEGER PRIMARY KEY,
        erased_t   REAL NOT NULL
    );
    """,
)


def erased_session_ids(path: Path | str) -> set[int]:
    """The sessions erased with their patients, read from the clinic file without writing it
    (the coordinator and the nodes apply these): empty while the file or table is not there."""
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True, timeout=5.0)) as conn:
            return {r[0] for r in conn.execute("SELECT session_id FROM erased_sessions")}
    except sqlite3.Error:  # no clinic file yet, or one from before erasure was recorded
        return set()


@dataclass(frozen=True)
class AuditEntry:
    t: float
    username: str
    action: str
    patient_id: int | None
    session_id: int | None


class ClinicStore:
    """The clinic file at ``path``, created and migrated on first use."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.write() as conn:
            conn.execute("INSERT OR IGNORE INTO settings VALUES ('cookie_secret', ?)", (secrets.token_hex(32),))
            self.cookie_secret = bytes.fromhex(
                conn.execute("SELECT value FROM settings WHERE key = 'cookie_secret'").fetchone()[0])

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=10.0, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if conn.execute("PRAGMA user_version").fetchone()[0] != len(MIGRATIONS):
            migrate(conn, MIGRATIONS)
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, holding the write lock from its start; rolled back on error."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    # -- audit ----------------------------------------------------------------------------------
    def audit(self, username: str, action: str, patient_id: int | None = None,
              session_id: int | None = None, conn: sqlite3.Connection | None = None) -> None:
        """Who did what to which patient or session — kept here, never in the process log."""
        row = (time.time(), username, action, patient_id, session_id)
        if conn is not None:
            conn.execute("INSERT INTO audit (t, username, action, patient_id, session_id) VALUES (?, ?, ?, ?, ?)", row)
            return
        with self.write() as c:
            self.audit(username, action, patient_id, session_id, c)

    def audit_log(self, patient_id: int | None = None, limit: int = 200) -> list[AuditEntry]:
        where, args = ("WHERE patient_id = ?", (patient_id,)) if patient_id is not None else ("", ())
        with self.read() as conn:
            rows = conn.execute(f"SELECT t, username, action, patient_id, session_id FROM audit {where} "
                                "ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [AuditEntry(*r) for r in rows]
