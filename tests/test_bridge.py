"""The bridge daemon against the simulated controller on a real pty and a real Mosquitto:
belt state, arm/disarm with exact pulse counts, the device vanishing, a silent
controller, malformed commands — and the two commands as real processes."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from firmware_bridge.bridge import Bridge
from firmware_bridge.simulator import TreadmillSimulator
from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import (BeltState, CommandReply, LinkState, TreadmillCommand, TreadmillEvent,
                              TriggerState, decode)
from rig.config import BridgeConfig, SerialSettings

MODELS = {topics.TREADMILL_STATE: BeltState, topics.TREADMILL_TRIGGER: TriggerState,
          topics.TREADMILL_EVENT: TreadmillEvent, topics.TREADMILL_CMD_REPLY: CommandReply,
          topics.BRIDGE_LINK: LinkState}


class Watcher:
    """Everything the bridge publishes, decoded, in arrival order per payload type."""

    def __init__(self, settings):
        self.client = BusClient(settings, "watcher").start()
        self.seen: dict[type, list] = {model: [] for model in MODELS.values()}
        self._cond = threading.Condition()
        for topic, model in MODELS.items():
            self.client.on(topic, self._handler(model))
        time.sleep(0.2)

    def _handler(self, model):
        def handle(msg):
            with self._cond:
                self.seen[model].append(decode(model, msg.payload))
                self._cond.notify_all()
        return handle

    def wait(self, model, pred=lambda p: True, timeout_s: float = 15.0):  # long: a loaded machine lags
        with self._cond:
            found = self._cond.wait_for(lambda: next((p for p in self.seen[model] if pred(p)), None),
                                        timeout_s)
        assert found, f"no {model.__name__} matching within {timeout_s} s; saw {self.seen[model][-3:]}"
        return found

    def command(self, cmd_id: str, cmd: str, rate_hz: float | None = None) -> CommandReply:
        self.send(TreadmillCommand(id=cmd_id, cmd=cmd, rate_hz=rate_hz).encode())
        return self.wait(CommandReply, lambda r: r.id == cmd_id)

    def send(self, payload: bytes) -> None:
        self.client.send(topics.TREADMILL_CMD, payload).wait_for_publish(2)

    def events(self) -> list[str]:
        return [e.kind for e in self.seen[TreadmillEvent]]


@pytest.fixture
def rig(broker):
    sim = TreadmillSimulator(seed=5, drift_ppm=-25.0).start()
    serial = SerialSettings(port=sim.path, silent_after_s=0.6, reconnect_min_s=0.1, reconnect_max_s=0.5)
    bridge = Bridge(BridgeConfig(mqtt=broker.settings(), serial=serial), simulated=True).start()
    watcher = Watcher(broker.settings())
    watcher.wait(LinkState, lambda s: s.connected and s.firmware == "1.0.0")
    yield sim, bridge, watcher
    watcher.client.close()
    bridge.stop()
    sim.stop()


def test_belt_arm_disarm_exact_pulses_on_mqtt(rig):
    sim, bridge, w = rig
    sim.belt_start(1.2, ramp_s=0.3)
    belt = w.wait(BeltState, lambda b: b.running and b.speed_m_s == 1.2)
    assert abs(belt.t - time.time()) < 1.0 and not belt.estop

    t_arm = time.time()
    assert w.command("a1", "arm", 60).ok
    armed = w.wait(TriggerState, lambda s: s.armed)
    assert armed.rate_hz == 60 and abs(armed.first_pulse_t - t_arm) < 0.1
    truth = sim.clock_to_monotonic(sim.first_pulse_clock) + time.time() - time.monotonic()
    assert abs(armed.first_pulse_t - truth) < 0.01

    refused = w.command("a2", "arm", 30)
    assert not refused.ok and refused.error.startswith("ALREADY_ARMED")
    commands = sim.commands
    w.send(TreadmillCommand(id="a1", cmd="arm", rate_hz=60).encode())  # a QoS 1 redelivery
    assert w.wait(CommandReply, lambda r: r.id == "a1" and r is not w.seen[CommandReply][0])
    assert sim.commands == commands  # answered again, not executed again

    time.sleep(0.8)
    assert w.command("d1", "disarm").ok
    final = w.wait(TriggerState, lambda s: not s.armed and s.pulses_sent > 0)
    assert final.pulses_sent == sim.pulses_sent
    assert final.first_pulse_t == pytest.approx(armed.first_pulse_t, abs=0.002)


def test_device_vanishes_bridge_reconnects_and_belt_stop_still_arrives(rig):
    sim, bridge, w = rig
    sim.belt_start(1.0)
    w.wait(BeltState, lambda b: b.running)
    sim.vanish(2.0)
    w.wait(TreadmillEvent, lambda e: e.kind == "link_lost")
    sim.belt_stop()  # during the outage
    w.wait(TreadmillEvent, lambda e: e.kind == "link_restored")
    w.wait(BeltState, lambda b: not b.running, timeout_s=3)
    link = w.wait(LinkState, lambda s: s.connected and s.reconnects == 1)
    assert w.events()[:2] == ["link_lost", "link_restored"]
    assert link.port == sim.path
    assert w.command("p1", "ping").ok


def test_silent_controller_is_reported_and_commands_do_not_hang(rig):
    sim, bridge, w = rig
    t0 = time.time()
    sim.pause(2.0)
    silent = w.wait(TreadmillEvent, lambda e: e.kind == "controller_silent", timeout_s=2)
    assert silent.t - t0 < 0.6 + 0.5
    assert w.wait(LinkState, lambda s: s.controller_silent)
    reply = w.command("p2", "ping")
    assert not reply.ok and "timeout" in reply.error
    w.wait(TreadmillEvent, lambda e: e.kind == "controller_back", timeout_s=3)


def test_malformed_commands_counted_and_a_good_one_answered(rig):
    sim, bridge, w = rig
    for bad in [b"junk", b'{"v":1,"id":"x","cmd":"explode"}', b'{"v":1,"id":"y","cmd":"arm","rate_hz":0}']:
        w.send(bad)
    assert w.command("ok1", "status").ok
    assert bridge.bus.rejected == {"TreadmillCommand": 3}
    reply = w.command("r1", "arm")  # valid payload, but arm needs a rate
    assert not reply.ok and "rate_hz" in reply.error


def test_faults_estop_and_noise_are_reported(rig):
    sim, bridge, w = rig
    sim.estop()
    w.wait(TreadmillEvent, lambda e: e.kind == "estop")
    w.wait(BeltState, lambda b: b.estop)
    sim.fault(1)
    fault = w.wait(TreadmillEvent, lambda e: e.kind == "fault")
    assert fault.code == 1 and fault.detail.startswith("MOTOR_OVERCURRENT")
    sim.estop_release()
    w.wait(TreadmillEvent, lambda e: e.kind == "estop_released")
    sim.inject_noise(20_000)
    sim.corrupt_next(3)
    w.wait(LinkState, lambda s: s.rejected_frames > 3 and s.lost_frames >= 3, timeout_s=4)


def gaitrig(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rig.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_commands_as_processes_and_clean_stop_on_sigterm(broker, tmp_path):
    link = tmp_path / "treadmill"
    sim = gaitrig("sim-treadmill", "--link", str(link), "--script", "start=0.3,speed=1.1,ramp=0,walk=30")
    assert sim.stdout.readline().strip() == str(link)
    bridge = gaitrig("bridge", "--serial", str(link), "--mqtt", f"127.0.0.1:{broker.port}",
                     "--rig-id", "test")
    w = Watcher(broker.settings())
    try:
        w.wait(BeltState, lambda b: b.running and b.speed_m_s == 1.1, timeout_s=8)
        assert w.command("c1", "ping").ok
    finally:
        w.client.close()
        for proc in (bridge, sim):
            proc.send_signal(signal.SIGTERM)
        assert bridge.wait(5) == 0, bridge.stderr.read()
        assert sim.wait(5) == 0


def test_broken_config_exits_2_naming_the_key(tmp_path):
    conf = tmp_path / "bridge.toml"
    conf.write_text('[serial]\nport = "/dev/null"\nsilent_after_s = -1\n')
    proc = gaitrig("bridge", "--config", str(conf))
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert f"{conf}: serial.silent_after_s: Input should be greater than 0" in err
