"""``gaitrig coordinator`` (the daemon), ``gaitrig sessions``, ``gaitrig report`` and ``gaitrig export``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rig.config import CoordinatorConfig
from rig.daemon import add_config_args, load_role_config, stop_event_on_signals


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("coordinator", help="run the coordinator daemon (sessions, storage)",
                       description="Starts sessions when the belt runs at walking speed, arms the trigger "
                       "train, stores every node's keypoints in SQLite and closes the session when the belt "
                       "stops. Runs until SIGTERM/Ctrl-C.")
    add_config_args(p, "coordinator")
    p.add_argument("--database", type=Path, help="SQLite file (overrides storage.database)")
    p.set_defaults(func=run_coordinator)

    p = sub.add_parser("sessions", help="list recorded sessions",
                       description="Lists the newest sessions in the coordinator's database with their "
                       "frame counts per view.")
    add_config_args(p, "coordinator")
    p.add_argument("--database", type=Path, help="SQLite file (overrides storage.database)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_sessions)

    p = sub.add_parser("report", help="a recorded session's gait report and what went wrong while recording",
                       description="Prints the stored gait report of a session (as `gaitrig analyze` does) "
                       "after what the recording lost: per view the trigger indices with no frame, which "
                       "gait cycles those outages touched, conflicting frames, frames lost to the disk and "
                       "messages rejected while it was recorded.")
    add_config_args(p, "coordinator")
    p.add_argument("session_id", type=int)
    p.add_argument("--database", type=Path, help="SQLite file (overrides storage.database)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run_report)

    p = sub.add_parser("export", help="export a session as keypoint files (one per view)",
                       description="Writes gaitrig-keypoints/1 JSON Lines files, one per view, for "
                       "`gaitrig analyze` or other tools; t is seconds from the first trigger pulse.")
    add_config_args(p, "coordinator")
    p.add_argument("session_id", type=int)
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--database", type=Path, help="SQLite file (overrides storage.database)")
    p.set_defaults(func=run_export)


def _config(args) -> CoordinatorConfig:
    return load_role_config(CoordinatorConfig, args, {"storage.database": str(args.database) if args.database else None})


def run_coordinator(args) -> int:
    import signal

    from rig.coordinator.daemon import Coordinator
    # A write beyond the file size limit must fail as a full disk does (SQLite reports it and
    # the disk guard counts the loss), not kill the daemon with SIGXFSZ.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    Coordinator(_config(args)).run(stop_event_on_signals())
    return 0


def _open_existing(config: CoordinatorConfig):
    from rig.coordinator.storage import Storage
    if not config.storage.database.exists():
        print(f"gaitrig: no database at {config.storage.database}", file=sys.stderr)
        raise SystemExit(2)
    return Storage(config.storage.database)


def run_sessions(args) -> int:
    storage = _open_existing(_config(args))
    rows = []
    for s in storage.sessions():
        frames = {n.view: n.frames_received for n in storage.nodes(s.id)}
        rows.append({"session_id": s.id, "state": s.state, "start": s.start_reason, "stop": s.stop_reason,
                     "pulses": s.pulses_sent, "frames": frames, "complete": s.complete})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'id':>4}  {'state':8} {'pulses':>7}  {'complete':8}  frames per view")
    for r in rows:
        frames = " ".join(f"{v}={n}" for v, n in r["frames"].items())
        print(f"{r['session_id']:>4}  {r['state']:8} {r['pulses'] or 0:>7}  {str(r['complete']):8}  {frames}")
    return 0


def session_record(storage, sid: int) -> dict | None:
    """A session as `gaitrig report --json` prints it; None if there is no such session."""
    from rig.coordinator.tally import Counts
    row = storage.session(sid)
    if row is None:
        return None
    pulses = row.pulses_sent or 0
    nodes = storage.nodes(sid)
    stored = storage.report(sid)
    counts = Counts.of(storage.counts(sid))
    return {"session_id": sid, "state": row.state, "stop": row.stop_reason, "pulses": row.pulses_sent,
            "complete": row.complete, "frames": {n.view: n.frames_received for n in nodes},
            "missing": {n.view: storage.missing_spans(sid, n.view, pulses) for n in nodes},
            "conflicts": counts.conflicts, "frames_lost": counts.frames_lost, "rejected": counts.rejected,
            "report": json.loads(stored[0]) if stored and stored[0] else None,
            "analysis_error": stored[1] if stored else "not analysed yet"}


def format_record(r: dict) -> str:
    from rig.gait.cli import format_report
    lines = [f"session {r['session_id']}: {r['state']}, {r['pulses'] or 0} pulses, "
             + ("complete" if r["complete"] else "incomplete" if r["complete"] is not None else "not closed")
             + (f" (stopped: {r['stop']})" if r["stop"] else "")]
    lines.append("  frames: " + ", ".join(f"{v} {n}" for v, n in r["frames"].items()))
    for view, spans in r["missing"].items():
        if spans:
            lines.append(f"  {view}: no frame for trigger indices "
                         + ", ".join(f"{a}–{b - 1}" for a, b in spans))
    for key, label in (("conflicts", "conflicting frames (first kept)"), ("frames_lost", "frames lost to the disk"),
                       ("rejected", "messages rejected")):
        if r[key]:
            lines.append(f"  {label}: " + ", ".join(f"{k} {n}" for k, n in r[key].items()))
    if r["report"]:
        lines.append(format_report(r["report"]))
    else:
        lines.append(f"  no gait report: {r['analysis_error']}")
    return "\n".join(lines)


def run_report(args) -> int:
    record = session_record(_open_existing(_config(args)), args.session_id)
    if record is None:
        print(f"gaitrig: no session {args.session_id} in the database", file=sys.stderr)
        return 2
    print(json.dumps(record, indent=2) if args.json else format_record(record))
    return 0


def run_export(args) -> int:
    from rig.coordinator.export import ExportError, export_session
    storage = _open_existing(_config(args))
    try:
        paths = export_session(storage, args.session_id, args.out)
    except ExportError as e:
        print(f"gaitrig: {e}", file=sys.stderr)
        return 2
    for view, path in paths.items():
        print(f"{view}: {path}")
    return 0
