"""``gaitrig web``: the clinicians' tablet pages, served from the coordinator's database."""
from __future__ import annotations

import argparse
from pathlib import Path

from rig.config import CoordinatorConfig
from rig.daemon import load_role_config

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 8080


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("web", help="serve the tablet pages (sessions, reports, comparisons), read-only",
                       description="Serves the gait reports to the clinicians' tablet: the sessions list, each "
                       "session's report with charts, two sessions compared, and the same as JSON under /api. "
                       "Reads the coordinator's SQLite database read-only while the coordinator writes it. "
                       "Runs until SIGTERM/Ctrl-C; see docs/tablet.md.")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="the coordinator's TOML config, for storage.database (default: built-in defaults)")
    p.add_argument("--database", type=Path, help="SQLite file (overrides storage.database)")
    p.add_argument("--clinic-database", type=Path, metavar="FILE",
                   help="accounts and patients (overrides web.clinic_database; default clinic.sqlite beside the database)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    p.set_defaults(func=run_web, mqtt=None, rig_id=None)  # the shared config loader reads these


def run_web(args: argparse.Namespace) -> int:
    from rig.web.server import serve
    config = load_role_config(CoordinatorConfig, args, overrides(args))
    return serve(config.storage.database, args.host, args.port, config.web)


def overrides(args: argparse.Namespace) -> dict:
    """The command line's --database and --clinic-database over the config file's."""
    return {"storage.database": str(args.database) if args.database else None,
            "web.clinic_database": str(args.clinic_database) if args.clinic_database else None}
