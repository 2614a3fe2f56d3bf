"""The coordinator's SQLite database: sessions, their nodes, belt-speed profile, frame
counts and every received keypoint frame (as received, so nothing recorded is lost).

Schema migrations from day one: MIGRATIONS is append-only; ``PRAGMA user_version`` holds
how many have been applied.
"""
from __future__ import annotations

import logging
import math
import os
import resource
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal
from urllib.parse import quote

log = logging.getLogger(__name__)
FrameStatus = Literal["stored", "duplicate", "conflict"]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sessions (
        id            INTEGER PRIMARY KEY,
        state         TEXT NOT NULL CHECK (state IN ('recording', 'closing', 'closed')),
        start_reason  TEXT NOT NULL,
        stop_reason   TEXT,
        started_t     REAL NOT NULL,
        ended_t       REAL,
        fps           REAL NOT NULL,
        first_pulse_t REAL,
        pulses_sent   INTEGER,
        complete      INTEGER
    );
    CREATE TABLE session_nodes (
        session_id      INTEGER NOT NULL REFERENCES sessions(id),
        view            TEXT NOT NULL,
        frames_received INTEGER NOT NULL DEFAULT 0,
        frames_reported INTEGER,
        captured        INTEGER,
        missed_triggers INTEGER,
        dropped         INTEGER,
        simulated       INTEGER,
        PRIMARY KEY (session_id, view)
    );
    CREATE TABLE belt_samples (
        session_id  INTEGER NOT NULL REFERENCES sessions(id),
        t           REAL NOT NULL,
        running     INTEGER NOT NULL,
        speed_m_s   REAL NOT NULL,
        incline_pct REAL NOT NULL,
        estop       INTEGER NOT NULL
    );
    CREATE INDEX belt_samples_session ON belt_samples(session_id, t);
    CREATE TABLE keypoints (
        session_id INTEGER NOT NULL,
        view       TEXT NOT NULL,
        idx        INTEGER NOT NULL,
        payload    BLOB NOT NULL,
        PRIMARY KEY (session_id, view, idx)
    ) WITHOUT ROWID;
    CREATE TABLE node_info (
        view    TEXT PRIMARY KEY,
        payload TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE session_reports (
        session_id     INTEGER PRIMARY KEY REFERENCES sessions(id),
        belt_speed_m_s REAL,
        report         TEXT,
        error          TEXT
    );
    """,
    """
    CREATE TABLE node_health (
        view       TEXT PRIMARY KEY,
        t          REAL NOT NULL,
        session_id INTEGER,
        frames_out INTEGER,
        missed     INTEGER,
        dropped    INTEGER
    );
    """,
    """
    CREATE TABLE session_counts (
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        what       TEXT NOT NULL CHECK (what IN ('conflicts', 'frames_lost', 'rejected')),
        key        TEXT NOT NULL,
        n          INTEGER NOT NULL,
        PRIMARY KEY (session_id, what, key)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE erased_sessions (session_id INTEGER PRIMARY KEY);
    """,
)


@dataclass(frozen=True)
class SessionRow:
    id: int
    state: str
    start_reason: str
    stop_reason: str | None
    started_t: float
    ended_t: float | None
    fps: float
    first_pulse_t: float | None
    pulses_sent: int | None
    complete: bool | None


@dataclass(frozen=True)
class NodeRow:
    view: str
    frames_received: int
    frames_reported: int | None
    captured: int | None
    missed_triggers: int | None
    dropped: int | None
    simulated: bool | None


def migrate(conn: sqlite3.Connection, migrations: tuple[str, ...] = MIGRATIONS) -> int:
    """Apply pending migrations in one transaction each; returns the schema version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise RuntimeError(f"database schema version {version} is newer than this gaitrig "
                           f"({len(migrations)}); upgrade gaitrig")
    for i in range(version, len(migrations)):
        conn.executescript(f"BEGIN; {migrations[i]}; PRAGMA user_version = {i + 1}; COMMIT;")
    return len(migrations)


class Storage:
    """One connection, used from one thread (the coordinator's worker). Writes accumulate
    in one open transaction, committed every half second; ``pending`` counts the frames it
    holds, which is exactly what a failed commit (a full disk) loses."""

    def __init__(self, path: Path | str):
        self.path = None if str(path) == ":memory:" else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        migrate(self.conn)
        self.pending: Counter[tuple[int, str]] = Counter()  # frames in the open transaction
        self.conn.execute("BEGIN")

    @classmethod
    def read_only(cls, path: Path) -> Storage:
        """The same queries for a reader beside the running coordinator (the tablet's patient
        export): the file opened read-only, no migration, no write transaction held open."""
        self = cls.__new__(cls)
        self.path, self.pending = Path(path), Counter()
        self.conn = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?mode=ro", uri=True,
                                    isolation_level=None, check_same_thread=False, timeout=5.0)
        self.conn.execute("PRAGMA query_only = ON")
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version != len(MIGRATIONS):
            self.conn.close()
            raise sqlite3.DatabaseError(f"{path}: schema version {version}, this gaitrig reads {len(MIGRATIONS)} "
                                        "(start the coordinator once to migrate it)")
        return self

    def commit(self) -> None:
        self.conn.execute("COMMIT")
        self.pending.clear()
        self.conn.execute("BEGIN")

    def headroom_bytes(self) -> float:
        """How much more the database may write: the free space of its file system, and
        what this process's file size limit (RLIMIT_FSIZE) still allows its largest file."""
        if self.path is None:
            return math.inf
        fs = os.statvfs(self.path.parent)
        room = float(fs.f_bavail * fs.f_frsize)
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY:
            files = (self.path, self.path.with_name(self.path.name + "-wal"))
            room = min(room, limit - max(f.stat().st_size if f.exists() else 0 for f in files))
        return room

    def abandon(self) -> Counter[tuple[int, str]]:
        """After a failed write: roll back the open transaction (SQLite may have done so
        already) and start a new one. Returns the frames lost, per (session, view); the
        database keeps only what was committed, so it stays consistent."""
        lost, self.pending = self.pending, Counter()
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        try:  # move the log into the database file so the log can start over: room for small writes
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass  # no room for that either; the next commit tries again
        self.conn.execute("BEGIN")
        return lost

    def close(self) -> None:
        """Commit what is pending and close; if the commit fails (disk full) the pending
        writes are rolled back and the database keeps its last committed state."""
        try:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")
        except sqlite3.Error as e:
            log.error("closing the database: the last %d frames were not committed (%s)", sum(self.pending.values()), e)
        finally:
            self.conn.close()  # rolls back whatever did not commit

    # -- sessions -------------------------------------------------------------------------
    def open_session(self, start_reason: str, started_t: float, fps: float, views: list[str]) -> int:
        # never the id of an erased session again (SQLite would reuse the largest after a delete):
        # the nodes delete the video of every id on the erased list
        cur = self.conn.execute(
            "INSERT INTO sessions (id, state, start_reason, started_t, fps) VALUES (1 + max("
            "(SELECT coalesce(max(id), 0) FROM sessions), (SELECT coalesce(max(session_id), 0) FROM erased_sessions)), "
            "'recording', ?, ?, ?)", (start_reason, started_t, fps))
        sid = int(cur.lastrowid)
        self.conn.executemany("INSERT INTO session_nodes (session_id, view) VALUES (?, ?)",
                              [(sid, v) for v in views])
        self.commit()
        return sid

    def set_train(self, sid: int, first_pulse_t: float | None, pulses_sent: int | None) -> None:
        self.conn.execute("UPDATE sessions SET first_pulse_t = coalesce(?, first_pulse_t), "
                          "pulses_sent = coalesce(?, pulses_sent) WHERE id = ?",
                          (first_pulse_t, pulses_sent, sid))

    def mark_closing(self, sid: int, stop_reason: str) -> None:
        self.conn.execute("UPDATE sessions SET state = 'closing', stop_reason = ? WHERE id = ?",
                          (stop_reason, sid))
        self.commit()

    def close_session(self, sid: int, ended_t: float, complete: bool) -> None:
        self.conn.execute("UPDATE sessions SET state = 'closed', ended_t = ?, complete = ? WHERE id = ?",
                          (ended_t, int(complete), sid))
        self.commit()

    def session(self, sid: int) -> SessionRow | None:
        row = self.conn.execute(f"SELECT {_SESSION_COLS} FROM sessions WHERE id = ?", (sid,)).fetchone()
        return _session_row(row) if row else None

    def sessions(self, limit: int = 50) -> list[SessionRow]:
        rows = self.conn.execute(f"SELECT {_SESSION_COLS} FROM sessions ORDER BY id DESC LIMIT ?", (limit,))
        return [_session_row(r) for r in rows]

    def unfinished_sessions(self) -> list[SessionRow]:
        rows = self.conn.execute(f"SELECT {_SESSION_COLS} FROM sessions WHERE state != 'closed'")
        return [_session_row(r) for r in rows]

    def unanalysed_sessions(self) -> list[int]:
        """Closed sessions without a gait report (nor a recorded reason why not)."""
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM sessions WHERE state = 'closed' AND id NOT IN (SELECT session_id FROM session_reports) "
            "ORDER BY id")]

    # -- what went wrong (rig.coordinator.tally) ---------------------------------------------
    def add_counts(self, counts: Counter) -> None:
        """Add ``{(session, what, key): n}`` to the sessions' counts, in the open transaction."""
        self.conn.executemany(
            "INSERT INTO session_counts VALUES (?, ?, ?, ?) ON CONFLICT (session_id, what, key) "
            "DO UPDATE SET n = n + excluded.n", [(sid, what, key, n) for (sid, what, key), n in counts.items() if n])

    def counts(self, sid: int) -> Counter:
        """``{(what, key): n}`` of one session."""
        return Counter({(w, k): n for w, k, n in self.conn.execute(
            "SELECT what, key, n FROM session_counts WHERE session_id = ?", (sid,))})

    # -- erasure -----------------------------------------------------------------------------
    def erase_sessions(self, sids: list[int]) -> int:
        """Delete every row of these sessions (their patient was erased), in the open
        transaction; the caller commits. Returns how many sessions were here."""
        marks = ",".join("?" * len(sids))
        self.conn.executemany("INSERT OR IGNORE INTO erased_sessions VALUES (?)", [(sid,) for sid in sids])
        for table in _SESSION_TABLES:
            self.conn.execute(f"DELETE FROM {table} WHERE session_id IN ({marks})", sids)
        return self.conn.execute(f"DELETE FROM sessions WHERE id IN ({marks})", sids).rowcount

    # -- nodes and frames -------------------------------------------------------------------
    def add_frame(self, sid: int, view: str, idx: int, payload: bytes) -> FrameStatus:
        """Store a frame once. The first frame for an index stays: the same bytes again are a
        QoS 1 redelivery ("duplicate"), different bytes a "conflict" the caller reports."""
        cur = self.conn.execute("INSERT OR IGNORE INTO keypoints VALUES (?, ?, ?, ?)", (sid, view, idx, payload))
        if not cur.rowcount:
            (stored,) = self.conn.execute("SELECT payload FROM keypoints WHERE session_id = ? AND view = ? AND idx = ?",
                                          (sid, view, idx)).fetchone()
            return "duplicate" if stored == payload else "conflict"
        self.conn.execute("UPDATE session_nodes SET frames_received = frames_received + 1 "
                          "WHERE session_id = ? AND view = ?", (sid, view))
        self.pending[sid, view] += 1
        return "stored"

    def node_end(self, sid: int, view: str, frames: int, captured: int, missed: int, dropped: int,
                 simulated: bool) -> None:
        self.conn.execute(
            "UPDATE session_nodes SET frames_reported = ?, captured = ?, missed_triggers = ?, dropped = ?, "
            "simulated = ? WHERE session_id = ? AND view = ?",
            (frames, captured, missed, dropped, int(simulated), sid, view))

    def missing_spans(self, sid: int, view: str, pulses: int) -> list[tuple[int, int]]:
        """Spans [first, end) of trigger indices below ``pulses`` with no stored frame."""
        gaps = self.conn.execute(
            "SELECT prev + 1, idx FROM (SELECT idx, lag(idx, 1, -1) OVER (ORDER BY idx) AS prev FROM keypoints "
            "WHERE session_id = ? AND view = ? AND idx < ?) WHERE idx > prev + 1", (sid, view, pulses)).fetchall()
        last = self.conn.execute("SELECT coalesce(max(idx), -1) FROM keypoints WHERE session_id = ? AND view = ? "
                                 "AND idx < ?", (sid, view, pulses)).fetchone()[0]
        return [(a, b) for a, b in gaps] + ([(last + 1, pulses)] if last + 1 < pulses else [])

    def last_index(self, sid: int) -> int:
        """The highest trigger index stored for the session, any view; -1 without frames."""
        return self.conn.execute("SELECT coalesce(max(idx), -1) FROM keypoints WHERE session_id = ?",
                                 (sid,)).fetchone()[0]

    def nodes(self, sid: int) -> list[NodeRow]:
        rows = self.conn.execute(
            "SELECT view, frames_received, frames_reported, captured, missed_triggers, dropped, simulated "
            "FROM session_nodes WHERE session_id = ? ORDER BY view", (sid,))
        return [NodeRow(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else bool(r[6])) for r in rows]

    def has_frame(self, sid: int, view: str, idx: int) -> bool:
        return self.conn.execute("SELECT 1 FROM keypoints WHERE session_id = ? AND view = ? AND idx = ?",
                                 (sid, view, idx)).fetchone() is not None

    def frames(self, sid: int, view: str) -> Iterator[bytes]:
        for (payload,) in self.conn.execute(
                "SELECT payload FROM keypoints WHERE session_id = ? AND view = ? ORDER BY idx", (sid, view)):
            yield payload

    def add_belt_sample(self, sid: int, t: float, running: bool, speed_m_s: float, incline_pct: float,
                        estop: bool) -> None:
        self.conn.execute("INSERT INTO belt_samples VALUES (?, ?, ?, ?, ?, ?)",
                          (sid, t, int(running), speed_m_s, incline_pct, int(estop)))

    def belt_samples(self, sid: int) -> Iterator[tuple[float, bool, float, float, bool]]:
        """Every stored belt sample of a session in time order: (t, running, speed_m_s,
        incline_pct, estop)."""
        for t, running, speed, incline, estop in self.conn.execute(
                "SELECT t, running, speed_m_s, incline_pct, estop FROM belt_samples WHERE session_id = ? "
                "ORDER BY t, rowid", (sid,)):
            yield t, bool(running), speed, incline, bool(estop)

    def belt_profile(self, sid: int) -> list[tuple[float, float]]:
        return list(self.conn.execute(
            "SELECT t, speed_m_s FROM belt_samples WHERE session_id = ? ORDER BY t", (sid,)))

    def save_report(self, sid: int, belt_speed_m_s: float | None, report_json: str | None,
                    error: str | None) -> None:
        self.conn.execute("INSERT OR REPLACE INTO session_reports VALUES (?, ?, ?, ?)",
                          (sid, belt_speed_m_s, report_json, error))

    def report(self, sid: int) -> tuple[str | None, str | None] | None:
        """(report JSON, error) of a session's gait analysis, or None if never analysed."""
        row = self.conn.execute("SELECT report, error FROM session_reports WHERE session_id = ?", (sid,)).fetchone()
        return tuple(row) if row else None

    def set_node_info(self, view: str, payload_json: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO node_info VALUES (?, ?)", (view, payload_json))

    def set_node_health(self, view: str, t: float, session_id: int | None, frames_out: int | None,
                        missed: int | None, dropped: int | None) -> None:
        """A camera node's latest health for its session so far (the live page shows it)."""
        self.conn.execute("INSERT OR REPLACE INTO node_health VALUES (?, ?, ?, ?, ?, ?)",
                          (view, t, session_id, frames_out, missed, dropped))

    def node_info(self, view: str) -> str | None:
        row = self.conn.execute("SELECT payload FROM node_info WHERE view = ?", (view,)).fetchone()
        return row[0] if row else None


# every table with a session_id column (a test checks the schema against this)
_SESSION_TABLES = ("keypoints", "belt_samples", "session_nodes", "session_counts", "session_reports", "node_health")
_SESSION_COLS = ("id, state, start_reason, stop_reason, started_t, ended_t, fps, first_pulse_t, "
                 "pulses_sent, complete")


def _session_row(r: tuple) -> SessionRow:
    return SessionRow(*r[:9], None if r[9] is None else bool(r[9]))
