"""``gaitrig users`` (accounts) and ``gaitrig patients`` (list, export, erase) on the clinic
file the tablet daemon uses. There is no default account and no default password: the first
admin is made here, with the password typed at a prompt or piped in (--password-stdin),
never on the command line where ``ps`` and the shell history would keep it."""
from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from rig.config import CoordinatorConfig
from rig.daemon import load_role_config

from .model import ROLES, ClinicError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, metavar="FILE", help="the coordinator's TOML config (web.clinic_database)")
    p.add_argument("--database", type=Path, help="coordinator SQLite file (the clinic file sits beside it)")
    p.add_argument("--clinic-database", type=Path, metavar="FILE", help="the clinic file itself")
    p.set_defaults(mqtt=None, rig_id=None)


def register(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="tablet accounts: add, list, remove, unlock",
                           description="Accounts of the tablet pages. Roles: clinician (reports and patients), "
                           "technician (rig health, no patient names), admin (accounts, erasing patients, and "
                           "everything a clinician sees).")
    us = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = us.add_parser("add", help="create an account (password from a prompt or --password-stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=list(ROLES))
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add.set_defaults(func=users_add)
    for name, func, text in (("list", users_list, "list accounts and whether they are locked"),
                             ("remove", users_remove, "delete an account (ends its log-ins)"),
                             ("unlock", users_unlock, "unlock an account locked after wrong passwords")):
        p = us.add_parser(name, help=text)
        if name != "list":
            p.add_argument("name")
        p.set_defaults(func=func)
    for p in us.choices.values():
        _common(p)

    patients = sub.add_parser("patients", help="patients: list, export (ZIP), erase",
                              description="Patients of the tablet pages. Export writes one patient's record, "
                              "sessions, conditions, reports, audit entries, keypoint frames and belt profiles "
                              "as one ZIP archive; erase deletes the patient "
                              "and their sessions: the coordinator's recordings and reports, and the review video "
                              "on every camera node (a node that is off deletes it when it reconnects).")
    ps = patients.add_subparsers(dest="patients_command", metavar="ACTION", required=True)
    pl = ps.add_parser("list", help="patient numbers, names and clinic IDs")
    pl.add_argument("--find", default="", help="only names or clinic IDs containing this")
    pl.set_defaults(func=patients_list)
    pe = ps.add_parser("export", help="one patient as a ZIP archive (record, reports, keypoints, belt) or JSON",
                       description="Writes one ZIP archive: patient.json (the record, each session's condition "
                       "and report, the audit entries and a manifest of the files), and per session "
                       "session-ID/keypoints-VIEW.jsonl (gaitrig-keypoints/1, for `gaitrig analyze`), "
                       "session-ID/belt.csv and session-ID/report.json. Review video stays on the camera "
                       "nodes and is not in it. --json-only prints patient.json's part without the recordings.")
    pe.add_argument("id", type=int)
    out = pe.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", type=Path, metavar="FILE.zip", help="write the archive here")
    out.add_argument("--json-only", action="store_true",
                     help="print the record, sessions, reports and audit entries as JSON on stdout")
    pe.set_defaults(func=patients_export)
    px = ps.add_parser("erase", help="erase one patient with their sessions' recordings and video")
    px.add_argument("id", type=int)
    px.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    px.set_defaults(func=patients_erase)
    for p in ps.choices.values():
        _common(p)


def _config(args: argparse.Namespace) -> CoordinatorConfig:
    from rig.web.cli import overrides
    return load_role_config(CoordinatorConfig, args, overrides(args))


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    config = _config(args)
    return config.storage.database, config.web.clinic_path(config.storage.database)


def _accounts(args: argparse.Namespace):
    from .accounts import Accounts
    from .store import ClinicStore
    return Accounts(ClinicStore(_paths(args)[1]))


def _fail(message: str) -> int:
    print(f"gaitrig: {message}", file=sys.stderr)
    return 1


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ClinicError("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ClinicError("the two passwords differ")
    return first


def users_add(args: argparse.Namespace) -> int:
    try:
        user = _accounts(args).add(args.name, args.role, _read_password(args))
    except ClinicError as e:
        return _fail(str(e))
    print(f"added {user.username} ({user.role})")
    return 0


def users_list(args: argparse.Namespace) -> int:
    import time
    now = time.time()
    for u in _accounts(args).list():
        state = "locked" if u.locked(now) else f"{u.failed_logins} failed" if u.failed_logins else "ok"
        print(f"{u.username}\t{u.role}\t{state}")
    return 0


def users_remove(args: argparse.Namespace) -> int:
    if not _accounts(args).remove(args.name):
        return _fail(f"there is no user {args.name!r}")
    print(f"removed {args.name}")
    return 0


def users_unlock(args: argparse.Namespace) -> int:
    if not _accounts(args).unlock(args.name):
        return _fail(f"there is no user {args.name!r}")
    print(f"unlocked {args.name}")
    return 0


def _records(args: argparse.Namespace):
    from .records import Records
    from .store import ClinicStore
    return Records(ClinicStore(_paths(args)[1]))


def _patient(args: argparse.Namespace):
    """(records, the patient numbered args.id or None)."""
    records = _records(args)
    return records, records.patient(args.id)


def patients_list(args: argparse.Namespace) -> int:
    for p in _records(args).find(args.find, limit=100_000):
        print(f"{p.id}\t{p.name}\t{p.birth_date or ''}\t{p.clinic_id or ''}")
    return 0


def patients_export(args: argparse.Namespace) -> int:
    from rig.web.database import DatabaseUnavailable, ReadOnlyDatabase
    from rig.web.patient_export import patient_export, write_patient_archive
    records, patient = _patient(args)
    if patient is None:
        return _fail(f"there is no patient {args.id}")
    db = ReadOnlyDatabase(_paths(args)[0])
    records.store.audit("(command line)", "export patient", patient.id)
    if args.json_only:
        try:
            document = patient_export(records, db, patient)
        except DatabaseUnavailable as e:
            return _fail(str(e))
        json.dump(document, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return 0
    partial = args.out.with_name(args.out.name + ".partial")  # never a half archive under the name asked for
    try:
        with open(partial, "wb") as f:
            manifest = write_patient_archive(f, records, db, patient)
        partial.replace(args.out)
    except OSError as e:
        partial.unlink(missing_ok=True)
        return _fail(f"--out {args.out}: {e.strerror}")
    except DatabaseUnavailable as e:
        partial.unlink(missing_ok=True)
        return _fail(str(e))
    sessions = manifest["sessions"]
    print(f"wrote {args.out}: patient {patient.id}, {len(sessions)} session{'s' * (len(sessions) != 1)}, "
          f"{len(manifest['files'])} files; review video is not included (it stays on the camera nodes)")
    return 0


def patients_erase(args: argparse.Namespace) -> int:
    records, patient = _patient(args)
    if patient is None:
        return _fail(f"there is no patient {args.id}")
    if not args.yes:
        if not sys.stdin.isatty():
            return _fail("no terminal to confirm on: add --yes")
        if input(f"erase patient {patient.id} ({patient.name})? type the number to confirm: ").strip() != str(patient.id):
            return _fail("not erased")
    from rig.web.database import ReadOnlyDatabase
    from rig.web.patient_erasure import erase_patient
    settings = _config(args).web
    erasure = erase_patient(records, ReadOnlyDatabase(_paths(args)[0]), patient.id, "(command line)",
                            settings.video_token(), settings.video_timeout_s)
    if erasure is None:
        return _fail(f"there is no patient {args.id}")
    print("\n".join(erasure.lines()))
    return 0
