"""``gaitrig install``: one daemon's config, broker secret and systemd units onto a Pi.

The work is a list of ``Step``s made first and run second, so ``--dry-run`` prints exactly
what a real run would do. Files go under a prefix (a tmp dir in tests, ``/`` on a Pi);
the system user is made, and systemd reloaded, only for prefix ``/`` as root — anything
else would touch the machine the tests run on.
"""
from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rig.config import BridgeConfig, ConfigError, CoordinatorConfig, NodeConfig, parse_config

USER = "gaitrig"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = REPO_ROOT / "systemd"
OPERATIONS_DOC = REPO_ROOT / "docs" / "operations.md"
MODELS = {"node": NodeConfig, "coordinator": CoordinatorConfig, "bridge": BridgeConfig}
UNITS = {"node": ["gaitrig-node@.service", "gaitrig-camera-trigger.service"],
         "coordinator": ["gaitrig-coordinator.service", "gaitrig-web.service"],
         "bridge": ["gaitrig-bridge.service"]}
PASSWORD_NAME = "mqtt.password"


class InstallError(Exception):
    """Cannot install as asked; the message says why and what to pass."""


@dataclass
class Step:
    description: str
    action: Callable[[], None]


def service_name(role: str, view: str | None) -> str:
    return f"gaitrig-node@{view}.service" if role == "node" else f"gaitrig-{role}.service"


def account_name(role: str, view: str | None) -> str:
    return f"node-{view}" if role == "node" else role


def render_config(role: str, view: str | None, example: str) -> str:
    """The example with this node's view and broker account filled in, validated."""
    text = example
    if role == "node":
        text = re.sub(r'(?m)^view = ".*"', f'view = "{view}"', text)
        text = re.sub(r'(?m)^(username = )"node-[a-z]+"', rf'\1"node-{view}"', text)
    try:
        parse_config(MODELS[role], tomllib.loads(text), f"{role}.toml")
    except (ConfigError, tomllib.TOMLDecodeError) as e:
        raise InstallError(f"the {role} config example is invalid: {e}") from None
    return text


def _is_root_install(prefix: Path) -> bool:
    return prefix.resolve() == Path("/") and os.geteuid() == 0


def _write(path: Path, text: str, mode: int, owner: tuple[str, str] | None = None) -> Callable[[], None]:
    """Created with ``mode`` from the start, so a secret is never readable for a moment."""
    def action() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        if owner:
            shutil.chown(path, *owner)
    return action


def _run(*cmd: str) -> Callable[[], None]:
    return lambda: subprocess.run(cmd, check=True)


def _user_exists() -> bool:
    try:
        pwd.getpwnam(USER)
        return True
    except KeyError:
        return False


def _user_steps(prefix: Path) -> list[Step]:
    if not _is_root_install(prefix):
        return [Step(f"skip: creating user {USER!r} and reloading systemd (only with --prefix / as root)",
                     lambda: None)]
    steps = []
    if not _user_exists():
        steps.append(Step(f"create system user {USER!r}", _run(
            "useradd", "--system", "--user-group", "--home-dir", "/var/lib/gaitrig", "--no-create-home",
            "--shell", "/usr/sbin/nologin", USER)))
    steps.append(Step("systemctl daemon-reload", _run("systemctl", "daemon-reload")))
    return steps


def _config_steps(role: str, view: str | None, prefix: Path, source: Path, force: bool,
                  owner: str | None) -> list[Step]:
    target = prefix / "etc/gaitrig" / f"{role}.toml"
    if target.exists() and not force:
        return [Step(f"keep existing {target} (--force overwrites)", lambda: None)]
    text = render_config(role, view, (source / f"{role}.toml").read_text())
    # root owns it, the daemon's group reads it: a compromised daemon cannot rewrite its config
    return [Step(f"write {target}", _write(target, text, 0o640, owner and ("root", owner)))]


def _password_steps(password_file: Path | None, prefix: Path, owner: str | None) -> list[Step]:
    target = prefix / "etc/gaitrig" / PASSWORD_NAME
    if password_file is None:
        return [Step(f"skip: {target} (pass --password-file secrets/<account>.password)", lambda: None)]
    if not password_file.is_file():
        raise InstallError(f"--password-file {password_file}: no such file")
    return [Step(f"write {target} (0600, owner {owner or 'unchanged'})",
                 _write(target, password_file.read_text(), 0o600, owner and (owner, owner)))]


def _unit_steps(role: str, prefix: Path, source: Path) -> list[Step]:
    steps = []
    for name in UNITS[role]:
        text = (source / name).read_text()
        steps.append(Step(f"write {prefix / 'etc/systemd/system' / name}",
                          _write(prefix / "etc/systemd/system" / name, text, 0o644)))
    if OPERATIONS_DOC.exists():
        doc = prefix / "usr/share/doc/gaitrig/operations.md"
        steps.append(Step(f"write {doc}", _write(doc, OPERATIONS_DOC.read_text(), 0o644)))
    return steps


def plan(role: str, *, view: str | None = None, prefix: Path = Path("/"), source: Path | None = None,
         password_file: Path | None = None, force: bool = False) -> list[Step]:
    """Every step of installing ``role`` under ``prefix``, nothing done yet."""
    if role not in MODELS:
        raise InstallError(f"unknown role {role!r}; one of {', '.join(MODELS)}")
    if (role == "node") != (view is not None):
        raise InstallError("--view is required for a node and only for a node")
    source = source or DEFAULT_SOURCE
    missing = [n for n in UNITS[role] + [f"{role}.toml"] if not (source / n).is_file()]
    if missing:
        raise InstallError(f"not found in {source}: {', '.join(missing)} (pass --source DIR: the repo's systemd/)")
    owner = USER if _is_root_install(prefix) else None
    steps = _user_steps(prefix)  # the user first: the password file is chowned to it
    steps += _config_steps(role, view, prefix, source, force, owner)
    steps += _password_steps(password_file, prefix, owner)
    steps += _unit_steps(role, prefix, source)
    return steps


def next_steps(role: str, view: str | None) -> list[str]:
    unit = service_name(role, view)
    return [f"systemctl enable --now {unit}", f"systemctl status {unit}",
            f"gaitrig diag selftest {account_name(role, view)}"]


def run_plan(steps: list[Step], dry_run: bool = False, echo: Callable[[str], None] = print) -> None:
    for step in steps:
        echo(("would: " if dry_run else "") + step.description)
        if not dry_run:
            step.action()
