"""What every daemon shares on the command line: a TOML config file plus a few overrides,
and a clean exit with one message when the config is broken."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from rig.config import ConfigError, parse_config, read_toml

log = logging.getLogger(__name__)
C = TypeVar("C", bound=BaseModel)


def add_config_args(parser: argparse.ArgumentParser, role: str) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help=f"TOML config for the {role} (default: built-in defaults); "
                        f"see docs/config.md")
    parser.add_argument("--mqtt", metavar="HOST:PORT", help="broker address (overrides mqtt.host/port)")
    parser.add_argument("--rig-id", help="rig id, the second level of every topic (overrides mqtt.rig_id)")


def load_role_config(model: type[C], args: argparse.Namespace, overrides: dict | None = None) -> C:
    """Config file, then command-line overrides; exits 2 with the file/key message on error."""
    data: dict = {}
    source = str(args.config) if args.config else "<defaults>"
    try:
        if args.config:
            data = read_toml(args.config)
        mqtt = data.setdefault("mqtt", {})
        if args.mqtt:
            host, _, port = args.mqtt.rpartition(":")
            mqtt["host"], mqtt["port"] = host or "localhost", port
        if args.rig_id:
            mqtt["rig_id"] = args.rig_id
        for dotted, value in (overrides or {}).items():
            if value is not None:
                *parents, leaf = dotted.split(".")
                node = data
                for p in parents:
                    node = node.setdefault(p, {})
                node[leaf] = value
        return parse_config(model, data, source)
    except ConfigError as e:
        print(f"gaitrig: config error:\n{e}", file=sys.stderr)
        raise SystemExit(2) from None


def stop_event_on_signals() -> threading.Event:
    """An event set by SIGTERM/SIGINT, so daemons stop cleanly under systemd and Ctrl-C."""
    stop = threading.Event()

    def handler(signum, frame):
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
