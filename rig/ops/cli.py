"""``gaitrig broker-config`` (the rig's locked-down Mosquitto files) and ``gaitrig install``."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from rig.ops import broker

SECRETS_DIR = "secrets"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("broker-config", help="generate the rig's locked-down Mosquitto config and accounts",
                       description="Writes mosquitto.conf, acl and passwd to DIR, plus secrets/<account>.password "
                       "(0600) for every account: one per daemon (bridge, coordinator, node-left|right|rear|front) "
                       "and one per --person. Existing secrets are kept, so re-running to add a person does not "
                       "change anybody's password; delete a secret file to rotate it.")
    p.add_argument("--rig-id", required=True, help="second level of every topic")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--conf-dir", metavar="DIR", help="where the files will live on the broker host, as named "
                   "in mosquitto.conf (default: DIR's absolute path)")
    p.add_argument("--persistence-dir", default="/var/lib/mosquitto/", metavar="DIR")
    p.add_argument("--tls-cert", metavar="FILE", help="server certificate: adds a TLS listener on 8883")
    p.add_argument("--tls-key", metavar="FILE", help="server key (with --tls-cert)")
    p.add_argument("--tls-ca", metavar="FILE", help="CA of client certificates (optional)")
    p.add_argument("--person", action="append", default=[], metavar="NAME:ROLE",
                   help="a person's account; ROLE is tablet (clinician) or technician; repeatable")
    p.set_defaults(func=run_broker_config)

    p = sub.add_parser("install", help="install a daemon's config example and systemd units on this Pi",
                       description="Puts the config example under PREFIX/etc/gaitrig/ (an existing config is "
                       "kept), the units under PREFIX/etc/systemd/system/ and, with PREFIX / as root, creates "
                       "the gaitrig system user. --dry-run prints the steps only.")
    p.add_argument("--role", required=True, choices=["node", "coordinator", "bridge"])
    p.add_argument("--view", choices=["left", "right", "rear", "front"], help="node only: this Pi's camera view")
    p.add_argument("--prefix", type=Path, default=Path("/"))
    p.add_argument("--password-file", type=Path, metavar="FILE",
                   help="this daemon's secret from `gaitrig broker-config` (secrets/<account>.password)")
    p.add_argument("--source", type=Path, metavar="DIR", help="where the units and examples are "
                   "(default: the systemd/ directory of this checkout)")
    p.add_argument("--force", action="store_true", help="overwrite an existing config")
    p.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    p.set_defaults(func=run_install)


def _tls(args) -> broker.Tls | None:
    if not (args.tls_cert or args.tls_key or args.tls_ca):
        return None
    if not (args.tls_cert and args.tls_key):
        raise broker.BrokerConfigError("TLS needs both --tls-cert and --tls-key")
    return broker.Tls(str(Path(args.tls_cert).resolve()), str(Path(args.tls_key).resolve()),
                      str(Path(args.tls_ca).resolve()) if args.tls_ca else None)


def _write(path: Path, text: str, mode: int) -> None:
    """Create with ``mode`` from the start, so a secret is never readable for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)  # an existing file keeps its old mode through O_CREAT


def _secrets(out: Path, accounts: list[broker.Account]) -> dict[str, str]:
    """Each account's password: the existing secret file, or a new random one (0600)."""
    folder = out / SECRETS_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    passwords = {}
    for acc in accounts:
        path = folder / f"{acc.name}.password"
        if path.exists() and path.read_text().strip():
            passwords[acc.name] = path.read_text().strip()
        else:
            passwords[acc.name] = broker.new_password()
            _write(path, passwords[acc.name] + "\n", 0o600)
    return passwords


def write_broker_files(args) -> list[Path]:
    broker.check_rig_id(args.rig_id)
    accounts = broker.all_accounts([broker.parse_person(p) for p in args.person])
    tls = _tls(args)  # every check before the first file is written
    out = args.out
    conf_dir = args.conf_dir or str(out.resolve())
    values = [("--conf-dir", conf_dir), ("--persistence-dir", args.persistence_dir)]
    if tls:
        values += [("--tls-cert", tls.certfile), ("--tls-key", tls.keyfile), ("--tls-ca", tls.cafile)]
    for option, value in values:
        if value is not None:
            broker.check_conf_value(option, value)
    out.mkdir(parents=True, exist_ok=True)
    passwords = _secrets(out, accounts)
    _write(out / "passwd", broker.password_file_text(passwords), 0o640)
    _write(out / "acl", broker.acl_text(args.rig_id, accounts), 0o640)
    conf = broker.mosquitto_conf(args.rig_id, password_file=f"{conf_dir}/passwd", acl_file=f"{conf_dir}/acl",
                                 tls=tls, persistence_dir=args.persistence_dir)
    _write(out / "mosquitto.conf", conf, 0o644)
    return [out / "mosquitto.conf", out / "acl", out / "passwd", out / SECRETS_DIR]


def run_broker_config(args) -> int:
    try:
        paths = write_broker_files(args)
    except broker.BrokerConfigError as e:
        print(f"gaitrig broker-config: {e}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    print("Copy secrets/<account>.password to each daemon's Pi (see docs/operations.md); "
          "the broker needs only mosquitto.conf, acl and passwd (owner root:mosquitto, 0640).")
    return 0


def run_install(args) -> int:
    from rig.ops.install import InstallError, next_steps, plan, run_plan
    try:
        steps = plan(args.role, view=args.view, prefix=args.prefix, source=args.source,
                     password_file=args.password_file, force=args.force)
        run_plan(steps, dry_run=args.dry_run)
    except (InstallError, OSError, subprocess.CalledProcessError) as e:
        print(f"gaitrig install: {e}", file=sys.stderr)
        return 2
    print("then (see docs/operations.md):")
    for line in next_steps(args.role, args.view):
        print(f"  {line}")
    return 0
