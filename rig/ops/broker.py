"""The locked-down Mosquitto configuration of one rig, as text (no files, no processes).

Accounts: one per daemon (its username is the daemon name, the same name BusClient uses
in its presence topic) and one per person with a role (``tablet`` clinician or
``technician``). The ACL is derived from the topic table's publisher/subscriber roles in
``rig.bus.topics`` so that adding a topic there updates the broker's rules too; only the
diagnostics topics (``diag/<daemon>/health|event|reply/#`` written by each daemon,
``diag/<daemon>/cmd`` and the technician-only ``diag/<daemon>/cmd/tech`` read by it) and
the technician's "read everything" are spelled out here.

Mosquitto ``pattern`` lines apply to *every* account; we use them only for a daemon's
self-scoped topics (``presence/%u``, ``diag/%u/...``), which gives each person at most a
namespace of their own name, never another account's. Person names may therefore not be
daemon names.
"""
from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
from dataclasses import dataclass

from rig.bus import topics
from rig.config import ALL_VIEWS, RIG_ID_PATTERN

DAEMONS: tuple[str, ...] = ("bridge", "coordinator") + tuple(f"node-{v}" for v in ALL_VIEWS)
PERSON_ROLES: tuple[str, ...] = ("tablet", "technician")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # no '+', '#', '/': safe inside %u patterns
RIG_ID_RE = re.compile(RIG_ID_PATTERN)  # the same rule the daemons' configs apply
CONF_VALUE_RE = re.compile(r"^[^\s\x00-\x1f\x7f]+$")  # one token on a mosquitto.conf line

# A minute of frames from every camera at the fastest trigger rate, queued per client
# (a coordinator that is away for a minute loses nothing), with headroom for the rest.
MAX_VIEWS = len(ALL_VIEWS)
MAX_FPS = 120
QUEUE_MINUTES = 1
QUEUE_HEADROOM = 1.5
MAX_QUEUED_MESSAGES = math.ceil(MAX_VIEWS * MAX_FPS * 60 * QUEUE_MINUTES * QUEUE_HEADROOM)
MAX_PACKET_BYTES = 4 * 1024 * 1024  # a still JPEG for aiming a camera fits; a runaway payload does not
AUTOSAVE_INTERVAL_S = 30  # a crash loses what came since the last save: nodes resend that long (resend_window_s)

# Published by each daemon under diag/<daemon>/; replies go to reply/<requester's suffix>
# (MQTT's '#' also matches the parent level, so reply/# covers the default reply topic).
DIAG_OUT = ("health", "event", "reply/#")
DIAG_CMD = "cmd"  # read by each daemon, written by technicians
DIAG_CMD_TECH = "cmd/tech"  # the same, for technician-only commands (a camera still)

# mosquitto_passwd (2.0) format: $7$ = PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12

PLAIN_PORT = 1883
TLS_PORT = 8883


class BrokerConfigError(ValueError):
    """A bad account or option, with the offending value in the message."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str  # "bridge", "coordinator", "node", "tablet", "technician"
    view: str | None = None  # nodes only

    @property
    def is_daemon(self) -> bool:
        return self.role in ("bridge", "coordinator", "node")


@dataclass(frozen=True)
class Tls:
    certfile: str
    keyfile: str
    cafile: str | None = None


def check_rig_id(rig_id: str) -> str:
    """The rig id is a topic level in every ACL line: '#', '+', '/' or nothing would widen
    the grants to other rigs or to everything."""
    if not RIG_ID_RE.match(rig_id):
        raise BrokerConfigError(f"--rig-id {rig_id[:40]!r}: use 1 to 32 letters, digits, '_' or '-' "
                                "(it is a topic level: no '/', '+', '#')")
    return rig_id


def check_conf_value(option: str, value: str) -> str:
    """A path written into mosquitto.conf: one token, so a newline cannot add directives."""
    if not CONF_VALUE_RE.match(value):
        raise BrokerConfigError(f"{option} {value[:60]!r}: a path without spaces or control characters")
    return value


def daemon_accounts() -> list[Account]:
    out = [Account("bridge", "bridge"), Account("coordinator", "coordinator")]
    return out + [Account(f"node-{v}", "node", v) for v in ALL_VIEWS]


def parse_person(spec: str) -> Account:
    """``NAME:ROLE`` from the command line, e.g. ``alice:tablet``."""
    name, sep, role = spec.partition(":")
    if not sep or role not in PERSON_ROLES:
        raise BrokerConfigError(f"--person {spec!r}: expected NAME:ROLE with ROLE one of {', '.join(PERSON_ROLES)}")
    if not NAME_RE.match(name):
        raise BrokerConfigError(f"--person {spec!r}: name may hold only letters, digits, '_' and '-'")
    if name in DAEMONS:
        raise BrokerConfigError(f"--person {spec!r}: {name!r} is a daemon's account name")
    return Account(name, role)


def all_accounts(persons: list[Account]) -> list[Account]:
    names = [p.name for p in persons]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BrokerConfigError(f"person named more than once: {', '.join(dupes)}")
    return daemon_accounts() + list(persons)


# -- ACL -------------------------------------------------------------------------------------
def _roles(field: str) -> set[str]:
    """The topic table's role words -> account roles ('diag' is the technician's tooling)."""
    aliases = {"nodes": "node", "diag": "technician", "every daemon": "daemon"}
    return {aliases.get(w.strip(), w.strip()) for w in field.split(",")}


def _has_role(account: Account, roles: set[str]) -> bool:
    return account.role in roles or (account.is_daemon and "daemon" in roles)


def _concrete(topic: topics.Topic, rig_id: str, account: Account, writing: bool) -> str:
    """A topic for one account: a node writes its own {view}; readers get '+' wildcards."""
    fields = {}
    for part in topic.pattern.split("/"):
        if part.startswith("{"):
            key = part[1:-1]
            own = account.view if key == "view" and writing else None
            fields[key] = own or "+"
    return topic.path(rig_id, **fields)


def _self_scoped(topic: topics.Topic) -> bool:
    """Topics like presence/{daemon} are written by each daemon under its own name (%u)."""
    return "{daemon}" in topic.pattern


def table_grants(account: Account, rig_id: str) -> list[tuple[str, str]]:
    """(access, topic) pairs for one account, from the topic table's roles."""
    grants = []
    for t in topics.TOPICS:
        if t in topics.DIAG_TOPICS:  # self-scoped by %u, spelled out in pattern_lines/extra_grants
            continue
        if _has_role(account, _roles(t.publisher)) and not _self_scoped(t):
            grants.append(("write", _concrete(t, rig_id, account, writing=True)))
        if _has_role(account, _roles(t.subscribers)):
            grants.append(("read", _concrete(t, rig_id, account, writing=False)))
    return grants


def extra_grants(account: Account, rig_id: str) -> list[tuple[str, str]]:
    """What the table does not say: technicians read everything and command daemons; the
    coordinator reads the daemons' health (the nodes' drops go live to the tablet)."""
    if account.role == "coordinator":
        return [("read", topics.DIAG_HEALTH.filter(rig_id))]
    if account.role != "technician":
        return []
    return [("read", f"{topics.ROOT}/{rig_id}/#"), ("read", "$SYS/#"),
            ("write", f"{topics.ROOT}/{rig_id}/diag/+/{DIAG_CMD}"),
            ("write", f"{topics.ROOT}/{rig_id}/diag/+/{DIAG_CMD_TECH}")]


def pattern_lines(rig_id: str) -> list[str]:
    """Each daemon's own presence and diagnostics, by username (%u)."""
    base = f"{topics.ROOT}/{rig_id}"
    lines = [f"pattern write {t.path(rig_id, daemon='%u')}" for t in topics.TOPICS
             if _self_scoped(t) and t not in topics.DIAG_TOPICS]
    lines += [f"pattern write {base}/diag/%u/{leaf}" for leaf in DIAG_OUT]
    lines += [f"pattern read {base}/diag/%u/{leaf}" for leaf in (DIAG_CMD, DIAG_CMD_TECH)]
    return lines


def grants(account: Account, rig_id: str) -> list[tuple[str, str]]:
    """Every (access, topic) line of one account's ACL block; a read of the whole rig
    (technicians) makes the table's single reads redundant, so they are left out."""
    extra = extra_grants(account, rig_id)
    everything = ("read", f"{topics.ROOT}/{rig_id}/#") in extra
    table = [(a, t) for a, t in table_grants(account, rig_id) if not (everything and a == "read")]
    return _merge(table + extra)


def _merge(grants: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One line per topic; read + write on the same topic becomes readwrite."""
    access: dict[str, set[str]] = {}
    for a, t in grants:
        access.setdefault(t, set()).add(a)
    return [("readwrite" if len(a) == 2 else a.pop(), t) for t, a in access.items()]


def acl_text(rig_id: str, accounts: list[Account]) -> str:
    out = [f"# Generated by `gaitrig broker-config` for rig {rig_id!r}; regenerate rather than edit.",
           "# Derived from rig/bus/topics.py (publisher/subscriber roles). Anything not granted is denied.",
           "# No lines before the first `user`: anonymous clients get nothing (and are refused anyway).", "",
           "# Every account: its own presence and diagnostics, by username."]
    out += pattern_lines(rig_id) + [""]
    for acc in accounts:
        out.append(f"# {acc.role}" + (f" ({acc.view} view)" if acc.view else ""))
        out.append(f"user {acc.name}")
        out += [f"topic {a} {t}" for a, t in grants(acc, rig_id)]
        out.append("")
    return "\n".join(out)


# -- passwords -------------------------------------------------------------------------------
def new_password() -> str:
    return secrets.token_urlsafe(24)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The same hash ``mosquitto_passwd`` 2.0 writes, so no binary is needed to make the file."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"$7${PBKDF2_ITERATIONS}${b64(salt)}${b64(digest)}"


def check_password(password: str, hashed: str) -> bool:
    """True if ``hashed`` (a $7$ entry of a password file) is ``password``."""
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    got = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations))
    return secrets.compare_digest(got, base64.b64decode(digest))


def password_file_text(passwords: dict[str, str]) -> str:
    return "".join(f"{name}:{hash_password(pw)}\n" for name, pw in passwords.items())


# -- mosquitto.conf --------------------------------------------------------------------------
def _listeners(tls: Tls | None) -> list[str]:
    if tls is None:
        return ["# Plain MQTT on the rig's LAN. Add TLS (--tls-cert/--tls-key) if the network is shared.",
                f"listener {PLAIN_PORT}"]
    out = ["# Plain MQTT only on loopback (daemons on the broker's own Pi); everyone else uses TLS.",
           f"listener {PLAIN_PORT} 127.0.0.1", "", f"listener {TLS_PORT}",
           f"certfile {tls.certfile}", f"keyfile {tls.keyfile}", "tls_version tlsv1.2"]
    if tls.cafile:
        out.append(f"cafile {tls.cafile}")
    return out


def mosquitto_conf(rig_id: str, *, password_file: str, acl_file: str, tls: Tls | None = None,
                   persistence_dir: str = "/var/lib/mosquitto/") -> str:
    out = [f"# Generated by `gaitrig broker-config` for rig {rig_id!r}; regenerate rather than edit.",
           "# Use as /etc/mosquitto/mosquitto.conf (it replaces Debian's default file).", "",
           "# One account table and one ACL for every listener: the accounts are the same on each.",
           "per_listener_settings false",
           "allow_anonymous false",
           f"password_file {password_file}",
           f"acl_file {acl_file}", "",
           "# Retained state and queued QoS 1 frames survive a broker restart.",
           "persistence true",
           f"persistence_location {persistence_dir}",
           f"autosave_interval {AUTOSAVE_INTERVAL_S}", "",
           f"# Per client: one minute of {MAX_VIEWS} cameras x {MAX_FPS} fps, x{QUEUE_HEADROOM} headroom.",
           f"max_queued_messages {MAX_QUEUED_MESSAGES}",
           f"max_packet_size {MAX_PACKET_BYTES}",
           "set_tcp_nodelay true", "",
           "# Under systemd stderr goes to the journal.",
           "log_dest stderr",
           "log_type error", "log_type warning", "log_type notice", "log_type information",
           "connection_messages true", ""]
    return "\n".join(out + _listeners(tls)) + "\n"
