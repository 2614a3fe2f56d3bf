"""The one ``gaitrig`` command. Each subcommand lives beside the code it drives and
registers itself through a ``register(subparsers)`` function of its module in COMMANDS.

``gaitrig CMD`` imports only CMD's module: a daemon carries only its own dependencies. A
camera node that imported every command's module held the analysis stack too (``rig.gait``
pulls in SciPy): 73 MB of its resident memory, on a Pi whose RAM is the OS's as well."""
from __future__ import annotations

import argparse
import importlib
import sys

from rig.logs import setup_logging

COMMANDS = {  # top-level command: the module that registers it
    "bridge": "firmware_bridge.cli", "sim-treadmill": "firmware_bridge.cli",
    "models": "edge_models.cli", "infer": "edge_models.cli",
    "coordinator": "rig.coordinator.cli", "sessions": "rig.coordinator.cli", "report": "rig.coordinator.cli",
    "export": "rig.coordinator.cli",
    "docs": "rig.docs",
    "node": "rig.node.cli",
    "demo": "rig.demo",
    "broker-config": "rig.ops.cli", "install": "rig.ops.cli",
    "diag": "rig.ops.diag_cli",
    "analyze": "rig.gait.cli", "compare": "rig.gait.cli",
    "web": "rig.web.cli",
    "calibrate": "rig.calibration.cli",
    "users": "rig.clinic.cli", "patients": "rig.clinic.cli",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))
_VALUED_OPTIONS = {"--log-level"}  # the top-level options that take a value


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with ``command`` alone, or with every command (help, docs, a typo)."""
    parser = argparse.ArgumentParser(
        prog="gaitrig",
        description="Treadmill gait-analysis rig: treadmill bridge, camera nodes, coordinator, "
        "offline inference and analysis, and a whole-rig simulation.",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log verbosity on stderr (default INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def command_named(argv: list[str]) -> str | None:
    """The command word of a command line (the first word that is not a top-level option or
    its value); None when there is none (``gaitrig --help``)."""
    words = iter(argv)
    for word in words:
        if word in _VALUED_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(command_named(argv)).parse_args(argv)
    setup_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
