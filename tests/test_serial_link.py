"""The host side of the line against the simulated controller on a real pty (pyserial):
commands and exact pulse counts, retransmission with de-duplication, a noise storm,
the device vanishing and coming back, and a controller that goes silent."""
from __future__ import annotations

import time

import pytest
import serial

from firmware_bridge.link import SerialLink
from firmware_bridge.protocol import messages as m
from firmware_bridge.protocol.framing import FrameDecoder, encode_frame
from firmware_bridge.simulator import Script, TreadmillSimulator
from rig.config import SerialSettings


def quiet_counts(link, sim, quiet_s: float = 0.05) -> tuple[int, int]:
    """(frames decoded, frames sent) at a moment when nothing is on the line: heartbeats
    come every 0.25 s, so a frame in flight would make the two counts disagree."""
    while True:
        before = (link.decoder.frames, sim.frames_sent)
        time.sleep(quiet_s)
        if (link.decoder.frames, sim.frames_sent) == before:
            return before


def wait_for(cond, timeout_s: float = 5.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


@pytest.fixture
def sim():
    s = TreadmillSimulator(seed=11, drift_ppm=30.0).start()
    yield s
    s.stop()


class Recorder:
    def __init__(self):
        self.messages: list[m.Message] = []
        self.links: list[bool] = []
        self.silent: list[tuple[bool, float]] = []

    def link(self, sim, **settings) -> SerialLink:
        s = SerialSettings(port=sim.path, reconnect_min_s=0.1, reconnect_max_s=0.4,
                           silent_after_s=0.6, **settings)
        return SerialLink(s, on_message=lambda msg, t: self.messages.append(msg),
                          on_link=self.links.append,
                          on_silent=lambda s: self.silent.append((s, time.monotonic()))).start()

    def of(self, cls):
        return [x for x in self.messages if isinstance(x, cls)]


def test_arm_disarm_counts_pulses_exactly_and_refuses_bad_commands(sim):
    rec = Recorder()
    link = rec.link(sim)
    try:
        assert link.wait_connected(2)
        assert link.command(m.StatusRequest()).ok
        assert rec.of(m.Hello)[-1].clock_hz == 1_000_000
        assert link.command(m.Arm(60_000)).ok
        again = link.command(m.Arm(30_000))
        assert not again.ok and again.code == m.ErrorCode.ALREADY_ARMED
        time.sleep(0.7)
        assert link.command(m.Disarm()).ok
        final = rec.of(m.TriggerStateMsg)[-1]
        assert not final.armed and final.pulses_sent == sim.pulses_sent
        elapsed = (sim.clock() - final.first_pulse_clock) / 1e6
        assert 0.6 < final.pulses_sent / 60 < elapsed + 0.1
        assert link.command(m.Arm(0)).code == m.ErrorCode.BAD_ARGUMENT
    finally:
        link.stop()


def test_unknown_command_gets_error_from_the_controller(sim):
    with serial.Serial(sim.path, 250000, timeout=0.1) as port:
        port.write(b"\x00" + encode_frame(3, 0x99, b"xy"))
        dec = FrameDecoder(m.CONTROLLER_BODY_SIZES)
        errors = []
        wait_for(lambda: errors or errors.extend(
            e for f in dec.feed(port.read(256)) if isinstance(e := m.decode(f.type, f.body), m.Error)))
    assert errors and (errors[0].acked_seq, errors[0].command, errors[0].code) == (
        3, 0x99, m.ErrorCode.UNKNOWN_COMMAND)


def test_lost_reply_is_retransmitted_and_executed_once(sim):
    rec = Recorder()
    link = rec.link(sim)
    try:
        assert link.wait_connected(2)
        link.command(m.Ping())
        before = sim.commands
        sim.corrupt_next(2, "truncate", only=(m.TriggerStateMsg, m.Ack))  # both answers to the ARM are lost
        result = link.command(m.Arm(100_000))
        assert result.ok and result.tries == 2
        assert sim.commands == before + 1  # the retransmission was not executed again
        assert link.retransmits == 1 and link.decoder.rejected_total >= 2
    finally:
        link.stop()


def test_noise_storm_on_the_pty_every_frame_still_decoded(sim):
    rec = Recorder()
    link = rec.link(sim)
    try:
        assert link.wait_connected(2)
        assert link.command(m.Ping()).ok
        frames0, sent0 = quiet_counts(link, sim)
        sim.inject_noise(120_000)
        assert wait_for(lambda: link.decoder.rejected_total > 50 and sim._noise == b"", 5)
        assert link.command(m.Ping()).ok
        frames1, sent1 = quiet_counts(link, sim)
        assert link.lost == 0 and sim.bytes_dropped == 0
        assert frames1 - frames0 == sent1 - sent0
    finally:
        link.stop()


def test_device_vanishes_and_comes_back_link_reopens_same_path(sim):
    rec = Recorder()
    link = rec.link(sim)
    try:
        assert link.wait_connected(2)
        sim.vanish(1.0)
        assert wait_for(lambda: rec.links == [True, False], 2)
        assert not link.command(m.Ping()).ok  # fails fast while down, no hang
        assert wait_for(lambda: rec.links == [True, False, True], 4)
        assert link.reconnects == 1
        assert link.command(m.Ping()).ok
    finally:
        link.stop()


def test_paused_controller_is_reported_silent_then_back(sim):
    rec = Recorder()
    link = rec.link(sim, command_retries=1)
    try:
        assert link.wait_connected(2)
        t0 = time.monotonic()
        sim.pause(1.5)
        assert wait_for(lambda: rec.silent, 2)
        assert rec.silent[0][0] is True and rec.silent[0][1] - t0 < 0.6 + 0.4
        result = link.command(m.Ping())  # answered by nobody: bounded wait
        assert not result.ok and "timeout" in result.error
        assert wait_for(lambda: len(rec.silent) == 2, 3) and rec.silent[1][0] is False
    finally:
        link.stop()


def test_clock_sync_through_the_pty(sim):
    rec = Recorder()
    link = rec.link(sim)
    try:
        assert link.wait_connected(2)
        assert wait_for(lambda: link.clocksync.samples >= 10, 4)
        now = time.monotonic()
        assert abs(link.clocksync.to_host_s(sim.clock(now)) - now) < 0.005
    finally:
        link.stop()


def test_script_parsing():
    assert Script.parse("start=0.5,speed=1.2,ramp=1,walk=20") == Script(0.5, 1.2, 1.0, 20.0)
    with pytest.raises(ValueError, match="script item 'sped=1'"):
        Script.parse("sped=1")
