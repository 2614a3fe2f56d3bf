"""``gaitrig CMD`` loads only CMD's module: a camera node's memory holds no analysis stack."""
from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from rig.cli import COMMAND_MODULES, COMMANDS, command_named


def test_the_command_map_names_exactly_what_each_module_registers():
    registered = {}
    for module in COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        registered.update(dict.fromkeys(sub.choices, module))
    assert registered == COMMANDS


def test_the_command_word_is_found_past_top_level_options():
    assert command_named(["--log-level", "DEBUG", "node", "--config", "n.toml"]) == "node"
    assert command_named(["--log-level=WARNING", "web", "--port", "80"]) == "web"
    assert command_named(["--help"]) is None and command_named([]) is None


def imports_scipy(*argv: str) -> bool:
    code = ("import sys\nfrom rig.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_a_camera_node_does_not_load_the_analysis_stack_but_analyze_does():
    assert not imports_scipy("--log-level", "ERROR", "node", "--help")
    assert imports_scipy("analyze", "--help")
