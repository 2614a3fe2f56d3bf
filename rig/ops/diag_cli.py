"""``gaitrig diag``: a technician's view of a rig from anywhere the broker is reachable.

``status`` (one table of every daemon, problems first), ``watch`` (live), ``ping``,
``cmd`` and ``selftest``. It logs in as the person (``--username``, the account from
``gaitrig broker-config``) with a client id starting with that name, and publishes no
presence of its own: a technician is not a daemon. Replies come back on
``diag/<daemon>/reply/<client id>``, the only place a daemon may answer on a locked-down
broker.
"""
from __future__ import annotations

import argparse
import base64
import json
import math
import queue
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from rig.bus import topics
from rig.bus.payloads import DiagEvent, DiagHealth, DiagReply, PayloadError, Presence, TreadmillEvent, decode

EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE = 0, 1, 2
SETTLE_S = 1.0  # retained presence and health arrive right after the subscription; wait this long
STALE_PERIODS = 3  # no health for this many periods while "online": hung, or cut off
NOT_AUTHORISED = 135
KEY_FIGURES = {
    "node": ("frames_in", "frames_out", "dropped", "missed_triggers", "inference_latency_ms_p95",
             "inference_backlog", "spool_messages", "pace_mode", "keyframe_interval", "landmark_ms",
             "headroom_pct", "crop_spool_frames"),
    "bridge": ("serial_connected", "controller_silent", "serial_rejected_frames", "serial_lost_frames",
               "serial_reconnects", "controller_clock_drift_ppm"),
    "coordinator": ("session_state", "session_id", "frames_received_*", "db_mb"),
}
COMMON_FIGURES = ("cpu_temp_c", "cpu_load_1m", "disk_free_mb", "uptime_s")


class DiagCliError(Exception):
    """Cannot talk to the rig (unreachable, refused, no reply): exit status 2."""


# -- the connection --------------------------------------------------------------------------
class DiagClient:
    """A paho MQTT v5 client for one technician: connect, subscribe, request/reply."""

    def __init__(self, args: argparse.Namespace):
        host, _, port = (args.mqtt or "localhost:1883").rpartition(":")
        self.host, self.port, self.rig_id, self.timeout_s = host or "localhost", int(port or 1883), args.rig_id, args.timeout_s
        self.client_id = f"{args.username or 'diag'}-{uuid.uuid4().hex[:8]}"
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._acks: queue.Queue = queue.Queue()
        self._pubacks: dict[int, int] = {}
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        if args.username:
            password = Path(args.password_file).read_text().strip() if args.password_file else None
            c.username_pw_set(args.username, password)
        if args.tls_ca:
            c.tls_set(ca_certs=str(args.tls_ca))
        c.on_connect = lambda cl, u, f, rc, p: self._acks.put(("connack", rc))
        c.on_subscribe = lambda cl, u, mid, rcs, p: self._acks.put(("suback", rcs))
        c.on_publish = lambda cl, u, mid, rc, p: self._pubacks.__setitem__(mid, rc.value)
        c.on_message = lambda cl, u, msg: self.messages.put(msg)
        self.client = c

    def base(self) -> str:
        return f"{topics.ROOT}/{self.rig_id}/"

    def _ack(self, kind: str):
        try:
            got, value = self._acks.get(timeout=self.timeout_s)
        except queue.Empty:
            raise DiagCliError(f"no {kind.upper()} from {self.host}:{self.port} within {self.timeout_s} s") from None
        return value

    def connect(self) -> "DiagClient":
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as e:
            raise DiagCliError(f"cannot reach the broker at {self.host}:{self.port}: {e}") from None
        self.client.loop_start()
        rc = self._ack("connack")
        if rc.is_failure:
            raise DiagCliError(f"the broker refused the connection: {rc} (check --username/--password-file)")
        return self

    def subscribe(self, *filters: str) -> None:
        self.client.subscribe([(f, 1) for f in filters])
        codes = self._ack("suback")
        refused = [f for f, rc in zip(filters, codes) if rc.value >= 0x80]
        if refused:
            raise DiagCliError(f"not allowed to read {', '.join(refused)}: a technician account is needed")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def request(self, daemon: str, cmd: str, args: list[str], tech: bool = False) -> DiagReply:
        """One command, its reply matched by correlation data; DiagCliError on no reply."""
        return self.send(daemon, json.dumps({"v": 1, "cmd": cmd, "args": args}).encode(), tech)

    def send(self, daemon: str, payload: bytes, tech: bool = False) -> DiagReply:
        """Any payload as a command (tests send malformed ones), awaiting the correlated reply."""
        reply_topic = topics.DIAG_REPLY.path(self.rig_id, daemon=daemon) + f"/{self.client_id}"
        self.subscribe(reply_topic)
        correlation = uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic, props.CorrelationData = reply_topic, correlation
        props.MessageExpiryInterval = math.ceil(self.timeout_s)  # never carried out late
        topic = (topics.DIAG_CMD_TECH if tech else topics.DIAG_CMD).path(self.rig_id, daemon=daemon)
        info = self.client.publish(topic, payload, qos=1, properties=props)
        info.wait_for_publish(self.timeout_s)
        if self._pubacks.get(info.mid) == NOT_AUTHORISED:
            raise DiagCliError(f"the broker refused the command on {topic}: not authorised for this account")
        return self._await_reply(reply_topic, correlation, daemon)

    def _await_reply(self, reply_topic: str, correlation: bytes, daemon: str) -> DiagReply:
        deadline = time.monotonic() + self.timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if msg.topic == reply_topic and getattr(msg.properties, "CorrelationData", None) == correlation:
                return decode(DiagReply, msg.payload)
        raise DiagCliError(f"no reply from {daemon} within {self.timeout_s} s (is it up? `gaitrig diag status`)")


# -- status (pure) ---------------------------------------------------------------------------
@dataclass
class Seen:
    presence: Presence | None = None
    health: DiagHealth | None = None


@dataclass(frozen=True)
class Row:
    name: str
    state: str  # up, down, stale, unknown
    seen_s: float | None
    problems: dict[str, str]
    figures: dict


def _state(s: Seen, now: float) -> str:
    if s.presence is None:
        return "unknown"
    if not s.presence.online:
        return "down"
    if s.health is not None and now - s.health.t > STALE_PERIODS * s.health.period_s:
        return "stale"
    return "up"


def rows(seen: dict[str, Seen], now: float, known: set[str] | None = None) -> list[Row]:
    """One row per daemon, problems first: down, stale, unknown, up with problems, up."""
    out = []
    for name, s in seen.items():
        if known is not None and s.health is None and name not in known:
            continue  # a watcher or tool with a presence of its own, not a daemon
        last = max([x.t for x in (s.presence, s.health) if x is not None], default=None)
        figures = ({k: getattr(s.health, k) for k in COMMON_FIGURES} | s.health.figures) if s.health else {}
        out.append(Row(name, _state(s, now), None if last is None else now - last,
                       dict(s.health.problems) if s.health and s.presence and s.presence.online else {}, figures))
    rank = {"down": 0, "stale": 1, "unknown": 2}
    return sorted(out, key=lambda r: (rank.get(r.state, 3 if r.problems else 4), r.name))


def key_figures(row: Row) -> str:
    wanted = KEY_FIGURES.get(row.name.split("-")[0], ()) + COMMON_FIGURES
    parts = []
    for key in wanted:
        matches = [k for k in row.figures if k.startswith(key[:-1])] if key.endswith("*") else [key]
        parts += [f"{k}={_fmt(row.figures[k])}" for k in matches if k in row.figures]
    return " ".join(parts)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return "-" if v is None else str(v)


def _ago(s: float | None) -> str:
    if s is None:
        return "never"
    return f"{s:.0f}s ago" if s < 120 else f"{s / 60:.0f}m ago" if s < 7200 else f"{s / 3600:.0f}h ago"


def render(table: list[Row]) -> str:
    if not table:
        return "no daemon has reported on this rig (wrong --rig-id or broker?)"
    lines = [f"{'DAEMON':<13} {'STATE':<7} {'SEEN':<8} {'PROBLEMS':<24} KEY FIGURES"]
    for r in table:
        problems = ",".join(r.problems) or "-"
        lines.append(f"{r.name:<13} {r.state.upper() if r.state != 'up' else 'up':<7} {_ago(r.seen_s):<8} "
                     f"{problems:<24} {key_figures(r)}")
    details = [f"  {r.name} {k}: {d}" for r in table for k, d in r.problems.items()]
    return "\n".join(lines + (["problems:", *details] if details else []))


# -- collecting --------------------------------------------------------------------------------
def absorb(seen: dict[str, Seen], client: DiagClient, msg: mqtt.MQTTMessage):
    """Fold one presence/health message into ``seen``; returns the decoded payload or None."""
    try:
        if msg.topic.startswith(client.base() + "presence/"):
            p = decode(Presence, msg.payload)
            current = seen.setdefault(p.daemon, Seen()).presence
            if current is None or p.seq >= current.seq:  # a stale death never hides a new birth
                seen[p.daemon].presence = p
            return p
        if msg.topic.endswith("/health"):
            hl = decode(DiagHealth, msg.payload)
            seen.setdefault(hl.daemon, Seen()).health = hl
            return hl
        if msg.topic.endswith("/event"):
            return decode(DiagEvent, msg.payload)
        if msg.topic == topics.TREADMILL_EVENT.path(client.rig_id):
            return decode(TreadmillEvent, msg.payload)
    except PayloadError:
        return None
    return None


def collect(client: DiagClient, settle_s: float) -> dict[str, Seen]:
    client.subscribe(topics.PRESENCE.filter(client.rig_id), topics.DIAG_HEALTH.filter(client.rig_id))
    seen: dict[str, Seen] = {}
    deadline = time.monotonic() + settle_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            absorb(seen, client, client.messages.get(timeout=left))
        except queue.Empty:
            break
    return seen


def _known() -> set[str]:
    from rig.ops.broker import DAEMONS
    return set(DAEMONS)


# -- commands ----------------------------------------------------------------------------------
def _connected(args) -> DiagClient:
    return DiagClient(args).connect()


def run_status(args) -> int:
    client = _connected(args)
    try:
        seen = collect(client, args.wait_s)
    finally:
        client.close()
    table = rows(seen, time.time(), None if args.all else _known())
    if args.json:
        print(json.dumps([{"daemon": r.name, "state": r.state, "seen_s_ago": r.seen_s, "problems": r.problems,
                           "figures": r.figures} for r in table], indent=2))
    else:
        print(render(table))
    return EXIT_OK


def _event_line(p, now: float) -> str | None:
    stamp = time.strftime("%H:%M:%S", time.localtime(getattr(p, "t", now)))
    if isinstance(p, DiagEvent):
        state = "" if p.active else " cleared"
        return f"{stamp} {p.daemon:<12} {p.level.upper():<7} {p.kind}{state}: {p.detail}"
    if isinstance(p, TreadmillEvent):
        return f"{stamp} {'treadmill':<12} EVENT   {p.kind}: {p.detail}"
    if isinstance(p, Presence):
        return f"{stamp} {p.daemon:<12} {'UP' if p.online else 'DOWN':<7} presence (seq {p.seq})"
    return None


def run_watch(args) -> int:
    """The table every ``--every-s``, events and presence changes as they arrive."""
    client = _connected(args)
    base = client.rig_id
    try:
        seen = collect(client, args.wait_s)
        client.subscribe(topics.DIAG_EVENT.filter(base), topics.TREADMILL_EVENT.path(base))
        print(render(rows(seen, time.time(), _known())), flush=True)
        end = time.monotonic() + args.duration_s if args.duration_s else math.inf
        next_table = time.monotonic() + args.every_s
        while time.monotonic() < end:
            try:
                msg = client.messages.get(timeout=max(0.05, min(next_table, end) - time.monotonic()))
                p = absorb(seen, client, msg)
                line = None if isinstance(p, DiagHealth) else _event_line(p, time.time())
                if line:
                    print(line, flush=True)
            except queue.Empty:
                pass
            if time.monotonic() >= next_table:
                print(f"\n-- {time.strftime('%H:%M:%S')} --\n{render(rows(seen, time.time(), _known()))}", flush=True)
                next_table = time.monotonic() + args.every_s
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return EXIT_OK


def _request(args, name: str, cmd: str, cmd_args: list[str], tech: bool = False) -> DiagReply:
    client = _connected(args)
    try:
        return client.request(name, cmd, cmd_args, tech)
    finally:
        client.close()


def run_ping(args) -> int:
    t0 = time.perf_counter()
    reply = _request(args, args.name, "ping", [])
    ms = (time.perf_counter() - t0) * 1000
    if not reply.ok:
        print(f"{args.name}: {reply.error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.name}: pong in {ms:.0f} ms (up {reply.result.get('uptime_s')} s)")
    return EXIT_OK


def run_cmd(args) -> int:
    tech = args.tech or args.command_name == "still"
    reply = _request(args, args.name, args.command_name, args.args, tech)
    if not reply.ok:
        print(f"{args.name}: {args.command_name}: {reply.error}", file=sys.stderr)
        if reply.result:
            print(json.dumps(reply.result, indent=2))
        return EXIT_FAILED
    if "jpeg_b64" in reply.result:
        out = Path(args.out or f"{args.name}-still.jpg")
        out.write_bytes(base64.b64decode(reply.result["jpeg_b64"]))
        print(f"{out}: {reply.result['width']}x{reply.result['height']} JPEG, {reply.result['bytes']} bytes")
        return EXIT_OK
    print(json.dumps(reply.result, indent=2))
    return EXIT_OK


def _print_checks(name: str, reply: DiagReply) -> None:
    for c in reply.result.get("checks", []):
        ms = f" ({c['ms']} ms)" if c.get("ms") is not None else ""
        print(f"{name:<13} {'ok' if c['ok'] else 'FAIL':<5} {c['name']:<9} {c['detail']}{ms}")
    if not reply.result.get("checks"):
        print(f"{name:<13} FAIL  {reply.error}")


def run_selftest(args) -> int:
    """One daemon, or ``all`` that are up; exit 1 if any check failed."""
    client = _connected(args)
    try:
        names = [args.name]
        if args.name == "all":
            table = rows(collect(client, args.wait_s), time.time(), _known())
            names = [r.name for r in table if r.state == "up"]
        failed = 0
        for name in names:
            reply = client.request(name, "selftest", [])
            _print_checks(name, reply)
            failed += not reply.ok
    finally:
        client.close()
    return EXIT_FAILED if failed else EXIT_OK


def _guarded(fn):
    def run(args) -> int:
        try:
            return fn(args)
        except (DiagCliError, OSError) as e:
            print(f"gaitrig diag: {e}", file=sys.stderr)
            return EXIT_UNREACHABLE
    return run


# -- argparse ----------------------------------------------------------------------------------
def _connection_args() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    g.add_argument("--mqtt", metavar="HOST:PORT", default="localhost:1883", help="broker (default localhost:1883)")
    g.add_argument("--rig-id", default="rig1", help="the rig's id, second level of every topic (default rig1)")
    g.add_argument("--username", help="your broker account (a technician's, on a locked-down broker)")
    g.add_argument("--password-file", type=Path, metavar="FILE", help="file holding your password")
    g.add_argument("--tls-ca", type=Path, metavar="FILE", help="CA certificate: connect with TLS (port 8883)")
    g.add_argument("--timeout-s", type=float, default=5.0, help="wait this long for the broker and replies")
    return p


def register(sub: argparse._SubParsersAction) -> None:
    conn = _connection_args()
    p = sub.add_parser("diag", help="diagnostics of a running rig over MQTT (status, watch, commands)",
                       description="A technician's view of a rig: every daemon's presence, health figures and "
                       "problems, live events, and commands (ping, config, set, selftest, restart, log_level, "
                       "still). Exit status: 0 ok, 1 the daemon answered with an error or a failed check, "
                       "2 the broker or the daemon could not be reached.")
    dsub = p.add_subparsers(dest="diag_command", metavar="SUBCOMMAND", required=True)

    s = dsub.add_parser("status", parents=[conn], help="one table of every daemon, problems first")
    s.add_argument("--json", action="store_true", help="every figure, as JSON")
    s.add_argument("--all", action="store_true", help="also clients with a presence but no health (tools)")
    s.add_argument("--wait-s", type=float, default=SETTLE_S, help="collect for this long (default 1)")
    s.set_defaults(func=_guarded(run_status))

    w = dsub.add_parser("watch", parents=[conn], help="live: events as they come, the table every few seconds")
    w.add_argument("--every-s", type=float, default=10.0, help="reprint the table this often (default 10)")
    w.add_argument("--duration-s", type=float, help="stop after this long (default: until Ctrl-C)")
    w.add_argument("--wait-s", type=float, default=SETTLE_S, help=argparse.SUPPRESS)
    w.set_defaults(func=_guarded(run_watch))

    g = dsub.add_parser("ping", parents=[conn], help="is NAME alive and answering?")
    g.add_argument("name", metavar="NAME", help="daemon: bridge, coordinator, node-left, ...")
    g.set_defaults(func=_guarded(run_ping))

    c = dsub.add_parser("cmd", parents=[conn], help="send one command to NAME and print the reply",
                        description="Commands: ping, health, config, set KEY VALUE, selftest, restart, "
                        "log_level LEVEL, still (technicians: a JPEG from a node's camera, saved to --out).")
    c.add_argument("name", metavar="NAME")
    c.add_argument("command_name", metavar="CMD")
    c.add_argument("args", nargs="*", metavar="ARG")
    c.add_argument("--out", type=Path, help="still: where to save the JPEG (default NAME-still.jpg)")
    c.add_argument("--tech", action="store_true", help="send on the technician-only topic (still always is)")
    c.set_defaults(func=_guarded(run_cmd))

    t = dsub.add_parser("selftest", parents=[conn], help="run NAME's self-tests (or 'all' that are up)")
    t.add_argument("name", metavar="NAME")
    t.add_argument("--wait-s", type=float, default=SETTLE_S, help=argparse.SUPPRESS)
    t.set_defaults(func=_guarded(run_selftest))
