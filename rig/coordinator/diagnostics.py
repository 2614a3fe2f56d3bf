"""What the coordinator tells a technician: session and database figures, its problems, a
database self-test run on its own worker and the session settings it can change live. The
coordinator builds these ``DiagHooks`` and hands them to ``rig.ops.diag.DiagAgent``, which
knows nothing of the coordinator.

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

from rig.ops import health as h
from rig.ops.diag import Check, DiagHooks, ms_since

if TYPE_CHECKING:
    from rig.coordinator.daemon import Coordinator

INBOX_BACKLOG = 2000  # coordinator messages waiting: the database is not keeping up


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
        done.put(Check("database", False, f"{path}: commit failed: {e}", ms_since(t0)))
        raise  # the worker rolls back, counts the frames lost and announces it
    done.put(_writable_check(path, t0))


def _writable_check(path: Path, t0: float) -> Check:
    if not os.access(Path(path).parent, os.W_OK):
        return Check("database", False, f"{Path(path).parent} is not writable (journal files)", ms_since(t0))
    return Check("database", True, f"{path}: committed and took the write lock", ms_since(t0))
