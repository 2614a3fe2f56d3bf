"""Diagnostics against a real Mosquitto: every command answered with its correlation data,
malformed and forbidden ones refused with an error reply (never a crash), presence through
SIGKILL and restart of a real daemon process, and the locked-down broker's rules for the
technician-only topic."""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from rig.bus import topics
from rig.bus.client import response_properties
from rig.bus.payloads import DiagReply, Presence, decode
from rig.cli import main
from rig.config import CoordinatorConfig, StorageSettings
from rig.coordinator.daemon import Coordinator
from rig.ops.diag import EXIT_RESTART
from rig.ops.diag_cli import DiagCliError, DiagClient
from rig.sim.broker import LocalBroker, free_port

RIG = "test"


def client_args(port: int, rig_id: str = RIG, username: str | None = None, password_file: Path | None = None,
                timeout_s: float = 5.0) -> argparse.Namespace:
    return argparse.Namespace(mqtt=f"127.0.0.1:{port}", rig_id=rig_id, username=username,
                              password_file=password_file, tls_ca=None, timeout_s=timeout_s)


def wait_answering(client: DiagClient, daemon: str, timeout_s: float = 10.0) -> None:
    """A daemon's birth (and BusClient's connected flag) comes before its SUBACK: a command
    sent at once may find no subscriber yet. Ping until it answers."""
    saved, client.timeout_s = client.timeout_s, 0.3
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                client.request(daemon, "ping", [])
                return
            except DiagCliError:
                if time.monotonic() > deadline:
                    raise
    finally:
        client.timeout_s = saved


@pytest.fixture
def coordinator(broker, tmp_path):
    """A coordinator running in this process, as in tests/test_rig.py."""
    config = CoordinatorConfig(mqtt=broker.settings(RIG), storage=StorageSettings(database=tmp_path / "db.sqlite"))
    coord, stop = Coordinator(config), threading.Event()
    thread = threading.Thread(target=coord.run, args=(stop,), daemon=True)
    thread.start()
    assert coord.bus.wait_connected(5)
    coord.test_thread = thread
    yield coord
    stop.set()
    thread.join(10)


@pytest.fixture
def tech(broker, coordinator):
    client = DiagClient(client_args(broker.port)).connect()
    wait_answering(client, "coordinator")
    yield client
    client.close()


def test_every_command_is_answered_with_its_correlation(coordinator, tech):
    assert tech.request("coordinator", "ping", []).result["pong"] is True
    health = tech.request("coordinator", "health", []).result
    assert health["daemon"] == "coordinator" and health["figures"]["session_state"] == "idle"
    assert tech.request("coordinator", "config", []).result["storage"]["database"].endswith("db.sqlite")
    selftest = tech.request("coordinator", "selftest", [])
    assert selftest.ok, selftest.error
    assert [c["name"] for c in selftest.result["checks"]] == ["database", "broker"]
    assert tech.request("coordinator", "log_level", ["debug"]).result == {"log_level": "DEBUG"}
    assert tech.request("coordinator", "log_level", ["INFO"]).ok


def test_a_live_setting_changes_the_running_daemon_and_others_need_a_restart(coordinator, tech):
    reply = tech.request("coordinator", "set", ["session.start_after_s", "4.5"])
    assert reply.ok and coordinator.machine.settings.start_after_s == 4.5
    refused = tech.request("coordinator", "set", ["mqtt.keepalive_s", "30"])
    assert not refused.ok and refused.result["needs_restart"] == ["mqtt.keepalive_s"]
    invalid = tech.request("coordinator", "set", ["session.start_after_s", "-2"])
    assert not invalid.ok and "greater than or equal to 0" in invalid.error
    assert coordinator.machine.settings.start_after_s == 4.5


@pytest.mark.parametrize("payload, error", [
    (b"not json", "malformed command"),
    (b'{"v": 1, "cmd": "ping", "extra": 1}', "malformed command"),
    (b'{"v": 1, "cmd": "reboot-everything"}', "unknown command 'reboot-everything'"),
    (b'{"v": 1, "cmd": "set", "args": ["session.fps"]}', "set takes 2 argument(s), got 1"),
    (b'{"v": 1, "cmd": "log_level", "args": ["LOUD"]}', "log level 'LOUD'"),
    (b'{"v": 1, "cmd": "still"}', "still is for technicians"),
])
def test_bad_commands_get_an_error_reply_and_the_daemon_still_answers(coordinator, tech, payload, error):
    reply = tech.send("coordinator", payload)  # times out unless the correlation data came back
    assert not reply.ok and error in reply.error
    assert tech.request("coordinator", "ping", []).ok
    assert coordinator.diag.refused == 1
    assert tech.request("coordinator", "health", []).result["commands_refused"] == 1


def test_restart_of_an_embedded_daemon_stops_it_without_ending_the_process(coordinator, tech):
    coord, thread = coordinator, coordinator.test_thread
    assert tech.request("coordinator", "restart", []).result["exit_status"] == EXIT_RESTART
    thread.join(10)
    assert not thread.is_alive() and coord.diag.restart_requested


def test_still_on_the_technician_topic_of_a_daemon_without_a_camera(coordinator, tech):
    reply = tech.request("coordinator", "still", [], tech=True)
    assert not reply.ok and reply.error == "coordinator has no camera"


def test_a_command_without_response_topic_is_answered_on_the_default_reply_topic(coordinator, broker, tech):
    got: queue.Queue = queue.Queue()
    peer = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    peer.on_message = lambda c, u, m: got.put(m)
    peer.connect("127.0.0.1", broker.port)
    peer.loop_start()
    try:
        peer.subscribe(topics.DIAG_REPLY.path(RIG, daemon="coordinator"), qos=1)
        time.sleep(0.3)
        props = response_properties("unused", b"corr-42")
        del props.ResponseTopic
        peer.publish(topics.DIAG_CMD.path(RIG, daemon="coordinator"), b'{"v":1,"cmd":"ping"}', qos=1,
                     properties=props)
        msg = got.get(timeout=5)
        assert msg.properties.CorrelationData == b"corr-42" and decode(DiagReply, msg.payload).ok
    finally:
        peer.disconnect()
        peer.loop_stop()


# -- a real daemon process: SIGKILL, restart, restart command ----------------------------------
class PresenceWatch:
    def __init__(self, port: int, daemon: str):
        self.q: queue.Queue[Presence] = queue.Queue()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"w-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
        self.c.on_message = lambda c, u, m: self.q.put(decode(Presence, m.payload))
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(topics.PRESENCE.path(RIG, daemon=daemon), qos=1)
        self.c.loop_start()

    def next(self, online: bool, timeout_s: float) -> Presence:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                p = self.q.get(timeout=0.1)
            except queue.Empty:
                continue
            if p.online == online:
                return p
        raise AssertionError(f"no presence online={online} within {timeout_s} s")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _coordinator_process(port: int, tmp: Path) -> subprocess.Popen:
    (tmp / "coordinator.toml").write_text("[mqtt]\nkeepalive_s = 2\n")  # the will fires 3 s after a kill
    return subprocess.Popen([sys.executable, "-m", "rig.cli", "coordinator", "--mqtt", f"127.0.0.1:{port}",
                             "--rig-id", RIG, "--config", str(tmp / "coordinator.toml"),
                             "--database", str(tmp / "db.sqlite")],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "coordinator.log", "ab"))


def test_sigkill_brings_the_death_and_a_restart_a_newer_birth(broker, tmp_path):
    watch = PresenceWatch(broker.port, "coordinator")
    proc = _coordinator_process(broker.port, tmp_path)
    try:
        first = watch.next(online=True, timeout_s=15)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        death = watch.next(online=False, timeout_s=8)
        assert death.seq == first.seq  # the last will of that very birth
        proc = _coordinator_process(broker.port, tmp_path)
        again = watch.next(online=True, timeout_s=15)
        assert again.seq > first.seq
        tech = DiagClient(client_args(broker.port)).connect()
        wait_answering(tech, "coordinator")
        tech.close()
        r = subprocess.run([sys.executable, "-m", "rig.cli", "diag", "cmd", "coordinator", "restart",
                            "--mqtt", f"127.0.0.1:{broker.port}", "--rig-id", RIG],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["exit_status"] == EXIT_RESTART
        assert proc.wait(15) == EXIT_RESTART  # systemd's Restart=on-failure starts it again
        assert watch.next(online=False, timeout_s=5).seq == again.seq  # a clean death, published by itself
    finally:
        if proc.poll() is None:
            proc.kill()
        watch.close()


# -- the locked-down broker --------------------------------------------------------------------
@pytest.fixture(scope="module")
def locked_broker(tmp_path_factory):
    out = tmp_path_factory.mktemp("diag-acl")
    assert main(["broker-config", "--rig-id", RIG, "--out", str(out),
                 "--person", "alice:tablet", "--person", "tom:technician"]) == 0
    port = free_port()
    conf = re.sub(r"(?m)^listener 1883$", f"listener {port} 127.0.0.1", (out / "mosquitto.conf").read_text())
    conf = re.sub(r"(?m)^persistence_location .*$", f"persistence_location {out}/", conf)
    brk = LocalBroker(out, config=conf + ("user root\n" if os.geteuid() == 0 else ""), port=port).start()
    yield brk, out
    brk.stop()


def test_only_technicians_may_use_the_technician_topic(locked_broker, tmp_path):
    brk, out = locked_broker
    settings = CoordinatorConfig(mqtt={"host": "127.0.0.1", "port": brk.port, "rig_id": RIG, "keepalive_s": 5,
                                       "username": "coordinator",
                                       "password_file": out / "secrets" / "coordinator.password"},
                                 storage=StorageSettings(database=tmp_path / "db.sqlite"))
    coord, stop = Coordinator(settings), threading.Event()
    thread = threading.Thread(target=coord.run, args=(stop,), daemon=True)
    thread.start()
    tom = DiagClient(client_args(brk.port, username="tom", password_file=out / "secrets" / "tom.password")).connect()
    alice = DiagClient(client_args(brk.port, username="alice", password_file=out / "secrets" / "alice.password",
                                   timeout_s=2.0))
    try:
        assert coord.bus.wait_connected(5)
        wait_answering(tom, "coordinator")  # the reply under diag/coordinator/reply/<id> is allowed
        assert "no camera" in tom.request("coordinator", "still", [], tech=True).error
        assert "for technicians" in tom.request("coordinator", "still", []).error
        alice.connect()
        with pytest.raises(DiagCliError, match="not (allowed to read|authorised)"):
            alice.request("coordinator", "ping", [])  # a tablet reads no diagnostics ...
        alice.subscribe(f"gaitrig/{RIG}/session/state")
        for tech in (False, True):  # ... and may send no command, on either topic
            topic = (topics.DIAG_CMD_TECH if tech else topics.DIAG_CMD).path(RIG, daemon="coordinator")
            info = alice.client.publish(topic, b'{"v":1,"cmd":"still"}', qos=1)
            info.wait_for_publish(2)
            assert alice._pubacks[info.mid] == 135  # MQTT v5: not authorised
        assert coord.diag.refused == 2  # tom's two refusals; alice's never reached the daemon
    finally:
        alice.close()
        tom.close()
        stop.set()
        thread.join(10)
