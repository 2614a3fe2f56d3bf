"""The coordinator's SQLite database, read-only, for the tablet pages.

The pages must never be able to change a recording, so every connection is opened with a
``file:...?mode=ro`` URI and ``PRAGMA query_only``. The coordinator writes in WAL mode, so
these readers see its last commit while it keeps writing. A connection lives for one request:
opening SQLite is cheap and nothing is shared between the server's threads.

The session list reads the cadence and the number of findings with SQLite's JSON functions,
so listing a hundred sessions does not parse a hundred full reports.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from rig.coordinator.intake import NodeHealth
from rig.coordinator.storage import NodeRow, SessionRow

OPEN_STATES = ("recording", "closing")
_SESSION_COLS = ("s.id, s.state, s.start_reason, s.stop_reason, s.started_t, s.ended_t, s.fps, s.first_pulse_t, "
                 "s.pulses_sent, s.complete")


class DatabaseUnavailable(RuntimeError):
    """The database cannot be read (not created yet, unreadable, or an unknown schema)."""


@dataclass(frozen=True)
class SessionListing:
    """One line of the sessions list: the session and a glance at its analysis."""

    session: SessionRow
    analysed: bool
    analysis_error: str | None
    cadence_steps_per_min: float | None
    findings_present: int
    findings_possible: int
    frames: dict[str, int]

    @property
    def findings(self) -> int:
        return self.findings_present + self.findings_possible


@dataclass(frozen=True)
class StoredReport:
    """What the coordinator stored after analysing a session: the report or why not."""

    belt_speed_m_s: float | None
    report: dict | None
    error: str | None


@dataclass(frozen=True)
class SessionRecord:
    """Everything the report page shows about one session."""

    session: SessionRow
    nodes: list[NodeRow]
    stored: StoredReport | None  # None: never analysed (still recording, or analysis pending)


class ReadOnlyDatabase:
    """Queries of the coordinator's database; every call opens and closes its own
    read-only connection, so an instance is safe to share between threads."""

    def __init__(self, path: Path | str, hidden: Callable[[], set[int]] = frozenset):
        """``hidden``: sessions to treat as absent (erased with their patient, rows not yet
        deleted by the coordinator)."""
        self.path, self.hidden = Path(path), hidden

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise DatabaseUnavailable(f"no database at {self.path} yet: the coordinator creates it "
                                      "when it first starts")
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=5.0)
            conn.execute("PRAGMA query_only = ON")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error as e:
            raise DatabaseUnavailable(f"cannot read {self.path}: {e}") from None
        missing = {"sessions", "session_nodes", "session_reports"} - tables
        if missing:
            conn.close()
            raise DatabaseUnavailable(f"{self.path} has no table {', '.join(sorted(missing))}: not a gaitrig "
                                      "coordinator database, or an older schema (start the coordinator once)")
        return conn

    def check(self) -> None:
        """Raise :class:`DatabaseUnavailable` unless the database can be read now."""
        with closing(self._connect()):
            pass

    # -- sessions ------------------------------------------------------------------------------
    def sessions(self, limit: int = 50, before_id: int | None = None) -> list[SessionListing]:
        """Newest first; ``before_id`` pages back through older sessions."""
        return self._listings("s.id < ? ORDER BY s.id DESC LIMIT ?",
                              (before_id if before_id is not None else 2 ** 62, limit))

    def sessions_by_id(self, ids: list[int]) -> list[SessionListing]:
        """The listed sessions that exist, newest first (e.g. one patient's)."""
        if not ids:
            return []
        return self._listings(f"s.id IN ({','.join('?' * len(ids))}) ORDER BY s.id DESC", tuple(ids))

    def _listings(self, where: str, args: tuple) -> list[SessionListing]:
        sql = (f"SELECT {_SESSION_COLS}, r.session_id IS NOT NULL, r.error, "
               "json_extract(r.report, '$.spatiotemporal.cadence_steps_per_min'), "
               "(SELECT count(*) FROM json_each(r.report, '$.findings') f "
               " WHERE json_extract(f.value, '$.level') = 'present'), "
               "(SELECT count(*) FROM json_each(r.report, '$.findings') f "
               " WHERE json_extract(f.value, '$.level') = 'possible') "
               "FROM sessions s LEFT JOIN session_reports r ON r.session_id = s.id "
               f"WHERE s.id NOT IN (SELECT value FROM json_each(?)) AND {where}")
        # hidden before LIMIT: the newest session, erased, must not make sessions(1) empty
        hidden = json.dumps(sorted(self.hidden()))
        with closing(self._connect()) as conn:
            rows = conn.execute(sql, (hidden, *args)).fetchall()
            frames = _frames_by_session(conn, [r[0] for r in rows])
        return [SessionListing(_session_row(r[:10]), bool(r[10]), r[11], r[12], r[13] or 0, r[14] or 0,
                               frames.get(r[0], {})) for r in rows]

    def open_session(self) -> SessionRow | None:
        """The session being recorded (or closed) right now, if any."""
        with closing(self._connect()) as conn:
            row = conn.execute(f"SELECT {_SESSION_COLS} FROM sessions s WHERE s.state IN (?, ?) "
                               "ORDER BY s.id DESC LIMIT 1", OPEN_STATES).fetchone()
        return _session_row(row) if row else None

    def live(self, session_id: int) -> LiveRows:
        """The latest belt speed, frame counts and newest keypoints of a session being recorded."""
        with closing(self._connect()) as conn:
            return _live_rows(conn, session_id)

    def keypoints_after(self, session_id: int, view: str, after_idx: int, limit: int) -> list[tuple[int, bytes]]:
        """The next ``limit`` keypoint frames of one view after frame ``after_idx``, in order."""
        with closing(self._connect()) as conn:
            return conn.execute("SELECT idx, payload FROM keypoints WHERE session_id = ? AND view = ? AND idx > ? "
                                "ORDER BY idx LIMIT ?", (session_id, view, after_idx, limit)).fetchall()

    def node_infos(self) -> dict[str, dict]:
        """Each view's newest birth message (NodeInfo) as the coordinator stored it; a row
        that is not a JSON object counts as none."""
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT view, payload FROM node_info").fetchall()
        out = {}
        for view, payload in rows:
            try:
                info = json.loads(payload)
            except (TypeError, ValueError):
                continue
            if isinstance(info, dict):
                out[view] = info
        return out

    def session(self, session_id: int) -> SessionRecord | None:
        """One session with its nodes and stored report; None if there is no such session."""
        if session_id in self.hidden():
            return None
        with closing(self._connect()) as conn:
            row = conn.execute(f"SELECT {_SESSION_COLS} FROM sessions s WHERE s.id = ?", (session_id,)).fetchone()
            if row is None:
                return None
            nodes = [NodeRow(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else bool(r[6]))
                     for r in conn.execute(
                         "SELECT view, frames_received, frames_reported, captured, missed_triggers, dropped, "
                         "simulated FROM session_nodes WHERE session_id = ? ORDER BY view", (session_id,))]
            stored = conn.execute("SELECT belt_speed_m_s, report, error FROM session_reports WHERE session_id = ?",
                                  (session_id,)).fetchone()
        return SessionRecord(_session_row(row), nodes, _stored_report(session_id, stored) if stored else None)

    def session_counts(self, session_id: int) -> dict[str, dict[str, int]]:
        """What went wrong while recording (rig.coordinator.tally): ``{"conflicts": {view: n},
        "frames_lost": {view: n}, "rejected": {kind: n}}``, only what happened."""
        out: dict[str, dict[str, int]] = {}
        with closing(self._connect()) as conn:
            try:
                rows = conn.execute("SELECT what, key, n FROM session_counts WHERE session_id = ? AND n > 0 "
                                    "ORDER BY what, key", (session_id,)).fetchall()
            except sqlite3.OperationalError:  # a database from before the table existed
                rows = []
        for what, key, n in rows:
            out.setdefault(what, {})[key] = n
        return out


@dataclass(frozen=True)
class LiveRows:
    """What the coordinator has stored of a session so far, for the live page."""

    belt_speed_m_s: float | None  # the latest belt sample
    frames: dict[str, int]  # view -> frames received
    latest: dict[str, bytes]  # view -> the newest keypoint frame as received
    node_info: dict[str, str]  # view -> NodeInfo JSON
    health: dict[str, NodeHealth] = field(default_factory=dict)  # view -> the node's health for this session


def _node_health(conn: sqlite3.Connection, session_id: int) -> dict[str, NodeHealth]:
    """Each node's latest health that is about this session (an older database has none)."""
    try:
        rows = conn.execute("SELECT view, t, session_id, frames_out, missed, dropped FROM node_health "
                            "WHERE session_id = ?", (session_id,)).fetchall()
    except sqlite3.OperationalError:  # no such table: the coordinator has not migrated it yet
        return {}
    return {r[0]: NodeHealth(*r) for r in rows}


def _live_rows(conn: sqlite3.Connection, session_id: int) -> LiveRows:
    belt = conn.execute("SELECT speed_m_s FROM belt_samples WHERE session_id = ? ORDER BY t DESC LIMIT 1",
                        (session_id,)).fetchone()
    frames = dict(conn.execute("SELECT view, frames_received FROM session_nodes WHERE session_id = ?", (session_id,)))
    latest = {}
    for view in frames:
        row = conn.execute("SELECT payload FROM keypoints WHERE session_id = ? AND view = ? ORDER BY idx DESC LIMIT 1",
                           (session_id, view)).fetchone()
        if row:
            latest[view] = row[0]
    info = dict(conn.execute("SELECT view, payload FROM node_info"))
    return LiveRows(belt[0] if belt else None, frames, latest, info, _node_health(conn, session_id))


def _stored_report(session_id: int, row: tuple) -> StoredReport:
    belt, report_json, error = row
    if report_json is None:
        return StoredReport(belt, None, error or "the analysis stored neither a report nor an error")
    try:
        report = json.loads(report_json)
    except json.JSONDecodeError as e:
        return StoredReport(belt, None, f"the stored report of session {session_id} is not valid JSON ({e})")
    if not isinstance(report, dict):
        return StoredReport(belt, None, f"the stored report of session {session_id} is not a JSON object")
    return StoredReport(belt, report, error)


def _frames_by_session(conn: sqlite3.Connection, ids: list[int]) -> dict[int, dict[str, int]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    out: dict[int, dict[str, int]] = {}
    for sid, view, n in conn.execute(f"SELECT session_id, view, frames_received FROM session_nodes "
                                     f"WHERE session_id IN ({marks}) ORDER BY view", ids):
        out.setdefault(sid, {})[view] = n
    return out


def _session_row(r: tuple) -> SessionRow:
    return SessionRow(*r[:9], None if r[9] is None else bool(r[9]))

