"""Pure rules of the clinic's records: roles and what they may do, a patient's fields, the
condition of a walk, visits grouped from sessions, and the lock-out rule. No I/O here."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import Enum


class ClinicError(ValueError):
    """Input a clinician typed that cannot be stored; the message says what to fix."""


class Permission(str, Enum):
    RIG = "rig"  # rig health and diagnostics, no patient names
    CLINICAL = "clinical"  # sessions, reports, patients
    ACCOUNTS = "accounts"  # users, unlocking, erasing a patient


ROLES: dict[str, frozenset[Permission]] = {
    "technician": frozenset({Permission.RIG}),
    "clinician": frozenset({Permission.RIG, Permission.CLINICAL}),
    "admin": frozenset({Permission.RIG, Permission.CLINICAL, Permission.ACCOUNTS}),
}
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_CHARS = 10


def check_username(name: str) -> str:
    if not USERNAME_RE.match(name or ""):
        raise ClinicError("a user name is 2-32 characters: lower-case letters, digits, '.', '_' or '-'")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ClinicError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ClinicError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return password


# -- patients ----------------------------------------------------------------------------------
MAX_NAME = 120
MAX_NOTES = 4000
MAX_CLINIC_ID = 40


@dataclass(frozen=True)
class PatientFields:
    """What a clinician types for a patient, checked."""

    name: str
    birth_date: str | None  # ISO date
    clinic_id: str | None
    notes: str

    @classmethod
    def parse(cls, name: str, birth_date: str = "", clinic_id: str = "", notes: str = "") -> "PatientFields":
        name = " ".join((name or "").split())
        if not name:
            raise ClinicError("a patient needs a name")
        if len(name) > MAX_NAME or len(notes or "") > MAX_NOTES or len((clinic_id or "").strip()) > MAX_CLINIC_ID:
            raise ClinicError(f"too long: name ≤ {MAX_NAME}, clinic ID ≤ {MAX_CLINIC_ID}, notes ≤ {MAX_NOTES} characters")
        return cls(name, _birth_date(birth_date), (clinic_id or "").strip() or None, (notes or "").strip())


def _birth_date(text: str) -> str | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ClinicError(f"date of birth {text!r} is not a date (YYYY-MM-DD)") from None
    if not dt.date(1900, 1, 1) <= day <= dt.date.today():
        raise ClinicError(f"date of birth {text} is not between 1900 and today")
    return day.isoformat()


# -- conditions --------------------------------------------------------------------------------
CONDITION_KINDS = ("barefoot", "shoes", "orthotic")
MAX_LABEL = 80


@dataclass(frozen=True)
class Condition:
    """What the patient walked in: barefoot, or shoes / an orthotic named by a label
    (e.g. "FootChair, arch 3"), so a comparison says what changed."""

    kind: str
    label: str | None = None

    @classmethod
    def parse(cls, kind: str, label: str = "") -> "Condition":
        label = " ".join((label or "").split())
        if kind not in CONDITION_KINDS:
            raise ClinicError(f"unknown condition {kind!r}: choose {', '.join(CONDITION_KINDS)}")
        if kind == "barefoot":
            if label:
                raise ClinicError("barefoot takes no label")
            return cls(kind)
        if not label:
            raise ClinicError(f"name the {kind} (a label such as the model and size)")
        if len(label) > MAX_LABEL:
            raise ClinicError(f"a label has at most {MAX_LABEL} characters")
        return cls(kind, label)

    def __str__(self) -> str:
        return f"{self.kind}: {self.label}" if self.label else self.kind


# -- visits ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Visit:
    """The sessions of one patient on one (local) day, oldest first."""

    day: dt.date
    session_ids: tuple[int, ...]


def group_visits(sessions: list[tuple[int, float]]) -> list[Visit]:
    """``(session id, start Unix time)`` → visits by local calendar day, newest visit first."""
    days: dict[dt.date, list[tuple[float, int]]] = {}
    for sid, started_t in sessions:
        days.setdefault(dt.date.fromtimestamp(started_t), []).append((started_t, sid))
    return [Visit(day, tuple(sid for _, sid in sorted(days[day]))) for day in sorted(days, reverse=True)]


# -- lock-out ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LockoutPolicy:
    """``after_failures`` wrong passwords in a row lock the account for ``lock_s`` seconds
    (OWASP authentication guidance: throttle guessing without a permanent denial of service);
    an admin can unlock sooner."""

    after_failures: int = 5
    lock_s: float = 900.0

    def after_failure(self, failures_before: int, now_t: float) -> tuple[int, float | None]:
        """(failures now, locked until or None) after one more wrong password."""
        failures = failures_before + 1
        return failures, (now_t + self.lock_s if failures >= self.after_failures else None)
