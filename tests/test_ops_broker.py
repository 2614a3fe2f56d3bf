"""The generated broker config, run by a real Mosquitto: who may publish and read what.

A forbidden message is shown absent by ordering, not by sleeping: after it, the same
publisher sends an allowed message (a sentinel); once the observer has the sentinel, the
forbidden one would have arrived before it (same client, QoS 1, in order)."""
from __future__ import annotations

import os
import queue
import re
import subprocess
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from rig.bus import topics
from rig.bus.client import BusClient
from rig.cli import main
from rig.config import MqttSettings
from rig.ops import broker as b
from rig.sim.broker import LocalBroker, free_port

RIG = "rigt"
BASE = f"gaitrig/{RIG}"
TIMEOUT_S = 3.0


def _runnable(conf: str, port: int, workdir: Path) -> str:
    """The generated config on a free loopback port, persisting into the test's dir; as
    root, mosquitto would drop to its own user, which cannot read the tmp dir."""
    conf = re.sub(r"(?m)^listener 1883$", f"listener {port} 127.0.0.1", conf)
    conf = re.sub(r"(?m)^persistence_location .*$", f"persistence_location {workdir}/", conf)
    return conf + ("user root\n" if os.geteuid() == 0 else "")


@pytest.fixture(scope="module")
def rig_broker(tmp_path_factory):
    out = tmp_path_factory.mktemp("brokerconf")
    assert main(["broker-config", "--rig-id", RIG, "--out", str(out),
                 "--person", "alice:tablet", "--person", "tom:technician"]) == 0
    port = free_port()
    brk = LocalBroker(out, config=_runnable((out / "mosquitto.conf").read_text(), port, out), port=port).start()
    yield brk, out
    brk.stop()


def _password(out: Path, account: str) -> str:
    return (out / "secrets" / f"{account}.password").read_text().strip()


class Peer:
    """A paho MQTT v5 client logged in as one account, collecting what it receives."""

    def __init__(self, port: int, username: str | None, password: str | None):
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.seen: list[str] = []
        self.live: list[str] = []  # not retained: published while we listened
        self.connack: queue.Queue = queue.Queue()
        self.puback: dict[int, int] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.client.on_message = self._on_message
        self.client.on_publish = lambda c, u, mid, rc, p: self.puback.__setitem__(mid, rc.value)
        self.client.connect_async("127.0.0.1", port, 10)
        self.client.loop_start()
        self.reason = self.connack.get(timeout=TIMEOUT_S)

    def _on_message(self, client, userdata, msg) -> None:
        self.seen.append(msg.topic)
        if not msg.retain:
            self.live.append(msg.topic)
        self.messages.put(msg)

    def subscribe(self, topic: str) -> None:
        done = queue.Queue()
        self.client.on_subscribe = lambda c, u, mid, rcs, p: done.put(rcs)
        self.client.subscribe(topic, qos=1)
        done.get(timeout=TIMEOUT_S)

    def publish(self, topic: str, payload: bytes = b"x", retain: bool = False) -> int:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(TIMEOUT_S)
        return self.puback.get(info.mid, -1)

    def wait_for(self, topic: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while topic not in self.seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic} never arrived; got {self.seen}")
            time.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peers(rig_broker):
    brk, out = rig_broker
    opened: list[Peer] = []

    def login(account: str, password: str | None = None) -> Peer:
        peer = Peer(brk.port, account, password if password is not None else _password(out, account))
        opened.append(peer)
        assert not peer.reason.is_failure, f"{account} refused: {peer.reason}"
        return peer
    yield login
    for p in opened:
        p.close()


def test_anonymous_and_wrong_password_are_refused(rig_broker):
    brk, out = rig_broker
    anonymous = Peer(brk.port, None, None)
    wrong = Peer(brk.port, "node-left", "not-the-password")
    other = Peer(brk.port, "node-left", _password(out, "node-right"))
    try:
        assert anonymous.reason.is_failure
        assert wrong.reason.is_failure and other.reason.is_failure
    finally:
        for p in (anonymous, wrong, other):
            p.close()


def test_a_node_publishes_only_under_its_own_view(peers):
    tech, node = peers("tom"), peers("node-left")
    tech.subscribe(f"{BASE}/#")
    assert node.publish(f"{BASE}/node/right/kp") == 135  # MQTT v5 PUBACK: not authorised
    node.publish(f"{BASE}/presence/node-right")  # nor speak for another daemon
    node.publish(f"{BASE}/session/state")  # nor fake the session
    assert node.publish(f"{BASE}/node/left/kp") == 0
    tech.wait_for(f"{BASE}/node/left/kp")
    assert tech.live == [f"{BASE}/node/left/kp"]


def test_a_node_reads_neither_patient_results_nor_other_nodes_keypoints(peers):
    coord, right, tech = peers("coordinator"), peers("node-right"), peers("tom")
    coord.publish(f"{BASE}/session/summary", b"patient data", retain=True)
    node = peers("node-left")
    node.subscribe(f"{BASE}/#")  # asks for everything; gets what its ACL allows
    tech.subscribe(f"{BASE}/node/#")
    right.publish(f"{BASE}/node/right/kp")
    tech.wait_for(f"{BASE}/node/right/kp")  # the broker has routed it
    coord.publish(f"{BASE}/session/summary", b"patient data")
    coord.publish(f"{BASE}/session/state", b"sentinel")
    node.wait_for(f"{BASE}/session/state")
    assert node.seen == [f"{BASE}/session/state"]


def test_a_node_reads_the_trigger_train_and_its_own_diag_commands(peers):
    bridge, tech, node = peers("bridge"), peers("tom"), peers("node-left")
    node.subscribe(f"{BASE}/#")
    tech.publish(f"{BASE}/diag/node-right/cmd")  # not this node's
    tech.publish(f"{BASE}/diag/node-left/cmd")
    bridge.publish(f"{BASE}/treadmill/state")  # the coordinator's business, not the node's
    bridge.publish(f"{BASE}/treadmill/trigger")
    node.wait_for(f"{BASE}/treadmill/trigger")
    assert sorted(node.seen) == [f"{BASE}/diag/node-left/cmd", f"{BASE}/treadmill/trigger"]


def test_the_tablet_cannot_drive_the_treadmill_or_read_keypoints(peers):
    tech, tablet, node = peers("tom"), peers("alice"), peers("node-left")
    tech.subscribe(f"{BASE}/#")
    tablet.subscribe(f"{BASE}/#")
    assert tablet.publish(f"{BASE}/treadmill/cmd") == 135
    tablet.publish(f"{BASE}/diag/coordinator/cmd")  # diag commands are for technicians
    assert tablet.publish(f"{BASE}/session/cmd") == 0  # what a clinician may do
    tech.wait_for(f"{BASE}/session/cmd")
    assert tech.live == [f"{BASE}/session/cmd"]
    node.publish(f"{BASE}/node/left/kp")
    tech.wait_for(f"{BASE}/node/left/kp")
    assert f"{BASE}/node/left/kp" not in tablet.seen


def test_the_coordinator_receives_every_nodes_frames_through_bus_client(rig_broker, peers):
    brk, out = rig_broker
    settings = MqttSettings(host="127.0.0.1", port=brk.port, rig_id=RIG, username="coordinator",
                            password_file=out / "secrets" / "coordinator.password", keepalive_s=5)
    coord = BusClient(settings, "coordinator").start(wait_s=TIMEOUT_S)  # birth: its own presence
    try:
        assert coord.connected
        got: queue.Queue[str] = queue.Queue()
        coord.on(topics.NODE_KEYPOINTS, lambda m: got.put(m.topic))
        nodes = {view: peers(f"node-{view}") for view in ("left", "right", "rear", "front")}
        _until_subscribed(lambda: nodes["left"].publish(topics.NODE_KEYPOINTS.path(RIG, view="left")), got)
        for view, node in nodes.items():
            node.publish(topics.NODE_KEYPOINTS.path(RIG, view=view))
        received = {got.get(timeout=TIMEOUT_S) for _ in range(4)}
        assert received == {topics.NODE_KEYPOINTS.path(RIG, view=v) for v in ("left", "right", "rear", "front")}
    finally:
        coord.close()


def _until_subscribed(probe, got: queue.Queue) -> None:
    """BusClient does not expose its SUBACK: probe until the first message comes through."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        probe()
        try:
            got.get(timeout=0.05)
        except queue.Empty:
            continue
        time.sleep(0.1)  # let any probes still in flight arrive, then drop them
        while not got.empty():
            got.get()
        return
    raise AssertionError("subscription never became active")


def test_secrets_are_private_and_kept_when_rerun(tmp_path):
    out = tmp_path / "conf"
    assert main(["broker-config", "--rig-id", RIG, "--out", str(out)]) == 0
    first = _password(out, "coordinator")
    assert (out / "secrets" / "coordinator.password").stat().st_mode & 0o777 == 0o600
    assert main(["broker-config", "--rig-id", RIG, "--out", str(out), "--person", "bob:technician"]) == 0
    assert _password(out, "coordinator") == first  # adding a person rotates nobody
    lines = dict(line.split(":", 1) for line in (out / "passwd").read_text().splitlines())
    assert set(lines) == set(b.DAEMONS) | {"bob"}
    assert b.check_password(first, lines["coordinator"])


def test_our_hash_reads_what_mosquitto_passwd_writes(tmp_path):
    exe = "/usr/bin/mosquitto_passwd"
    if not Path(exe).exists():
        pytest.skip("mosquitto_passwd not installed")
    subprocess.run([exe, "-c", "-b", str(tmp_path / "pw"), "alice", "s3cret"], check=True)
    hashed = (tmp_path / "pw").read_text().strip().split(":", 1)[1]
    assert hashed.startswith(f"$7${b.PBKDF2_ITERATIONS}$")
    assert b.check_password("s3cret", hashed) and not b.check_password("s3creT", hashed)


@pytest.mark.parametrize("spec", ["bob", "bob:admin", "coordinator:technician", "b/o#b:tablet"])
def test_bad_person_specs_are_refused(spec):
    with pytest.raises(b.BrokerConfigError):
        b.parse_person(spec)


def test_config_queues_a_minute_of_frames_and_tls_moves_plain_to_loopback():
    assert b.MAX_QUEUED_MESSAGES >= 4 * 120 * 60
    conf = b.mosquitto_conf(RIG, password_file="/p", acl_file="/a", tls=b.Tls("/c.pem", "/k.pem"))
    assert "allow_anonymous false" in conf and "persistence true" in conf
    assert "listener 1883 127.0.0.1" in conf and "listener 8883" in conf and "certfile /c.pem" in conf


@pytest.mark.parametrize("args, error", [
    (["--rig-id", "#"], "--rig-id '#': use 1 to 32 letters, digits, '_' or '-' (it is a topic level: no '/', '+', '#')"),
    (["--rig-id", "a/b"], "--rig-id 'a/b': use 1 to 32 letters"),
    (["--rig-id", "+"], "--rig-id '+': use 1 to 32 letters"),
    (["--rig-id", ""], "--rig-id '': use 1 to 32 letters"),
    (["--rig-id", "r" * 33], "--rig-id 'rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr': use 1 to 32 letters"),
    (["--rig-id", "ok", "--person", "#:tablet"], "--person '#:tablet': name may hold only"),
    (["--rig-id", "ok", "--persistence-dir", "/var/lib/m\nallow_anonymous true"],
     "--persistence-dir '/var/lib/m\\nallow_anonymous true': a path without spaces or control characters"),
    (["--rig-id", "ok", "--conf-dir", "/etc/mosquitto conf"], "--conf-dir '/etc/mosquitto conf': a path without"),
])
def test_hostile_names_are_refused_and_nothing_is_written(tmp_path, capsys, args, error):
    out = tmp_path / "conf"
    assert main(["broker-config", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gaitrig broker-config: {error}") and err.count("\n") == 1, err
    assert not out.exists()


def test_free_ports_lie_below_the_kernels_ephemeral_range_where_outgoing_connections_take_theirs():
    """A port from the ephemeral range can become some client's source port before the
    server started on it binds (CI: the test rig's tablet server, "address already in use");
    below the range no outgoing connection is given one."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(50)}
    assert len(ports) > 40 and all(20000 <= p < low for p in ports)
    import socket
    for p in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))  # free now
