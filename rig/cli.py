"""The one ``gaitrig`` command. Each subcommand lives beside the code it drives and
registers itself through a ``register(subparsers)`` function listed in COMMAND_MODULES."""
from __future__ import annotations

import argparse
import importlib
import sys

from rig.logs import setup_logging

COMMAND_MODULES = [
    "firmware_bridge.cli",
    "edge_models.cli",
    "rig.coordinator.cli",
    "rig.docs",
    "rig.node.cli",
    "rig.demo",
    "rig.ops.cli",
    "rig.ops.diag_cli",
    "rig.gait.cli",
    "rig.web.cli",
    "rig.calibration.cli",
    "rig.clinic.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaitrig",
        description="Treadmill gait-analysis rig: treadmill bridge, camera nodes, coordinator, "
        "offline inference and analysis, and a whole-rig simulation.",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log verbosity on stderr (default INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
