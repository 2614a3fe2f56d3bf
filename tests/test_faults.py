"""The fault suite, shortened for CI: the whole simulated rig as real processes (Mosquitto,
the controller on a pty, bridge, coordinator, four nodes), one walk per fault injected
mid-walk, judged by exact frame counts: the pulses the controller sent (its trigger line)
against the trigger indices the coordinator stored. The full run with its figures is
benchmarks/bench_faults.py."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from rig.config import ALL_VIEWS
from rig.gait.outages import describe
from rig.sim.faults import FaultRig, Outcome

BEFORE_S = 1.5  # walking before the fault
AFTER_S = 3.0  # walking once the rig is whole again


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    r = FaultRig(tmp_path_factory.mktemp("faults")).up()
    yield r
    r.down()


def assert_whole(o: Outcome) -> None:
    """One session, closed, analysed, with every pulse's frame from every view."""
    assert len(o.session_ids) == 1, f"the walk was split into sessions {o.session_ids}"
    assert o.pulses > 100
    assert {v: o.missing(v) for v in ALL_VIEWS} == {v: [] for v in ALL_VIEWS}
    assert o.stored == {v: list(range(o.pulses)) for v in ALL_VIEWS}
    assert (o.state, o.complete, o.analysis_error) == ("closed", True, None)
    assert o.report is not None


def test_broker_killed_and_restarted_three_times_loses_no_frame(rig):
    def outages(r: FaultRig) -> None:
        for _ in range(3):
            r.sleep(0.8)
            r.kill_broker()
            r.sleep(0.5)
            r.start_broker()
    o = rig.walk(AFTER_S, outages)
    assert_whole(o)
    assert rig.payload_mismatches(o.session_ids[0]) == 0, "a frame differs from the fault-free one"
    assert rig.reference_report(o.session_ids[0]) == o.report


def test_coordinator_sigkilled_mid_walk_resumes_the_same_session(rig):
    def crash(r: FaultRig) -> None:
        r.sleep(BEFORE_S)
        r.kill("coordinator")
        r.sleep(1.0)  # frames the nodes publish meanwhile wait in the broker
        r.restart("coordinator")
    o = rig.walk(AFTER_S, crash)
    assert_whole(o)
    assert rig.payload_mismatches(o.session_ids[0]) == 0


def test_coordinator_restart_command_mid_walk_resumes_the_same_session(rig):
    o = rig.walk(AFTER_S, lambda r: (r.sleep(BEFORE_S), r.restart_by_command("coordinator")))
    assert_whole(o)


def test_coordinator_down_when_the_belt_stops_closes_and_analyses_the_walk(rig):
    """The walk ends while the coordinator is away: on its return it closes the session it
    had open, with every frame, and analyses it; no empty session is opened."""
    first = rig.last_session_id() + 1
    rig.belt(f"start {rig.speed_m_s} 0.5")
    rig.watch.wait_state("recording", rig, session_from=first)
    rig.sleep(3.0)
    rig.kill("coordinator")
    rig.belt("stop")
    rig.sleep(1.0)
    rig.restart("coordinator")
    summary = rig.next_summary(first)
    o = rig.outcome(first, summary)
    assert summary.reason == "belt stopped"
    assert_whole(o)


def test_node_sigkilled_and_restarted_records_the_lost_span(rig):
    """The session completes; the killed view misses one span of trigger indices — the
    frames exposed while it was down — and the session says it is incomplete."""
    spans = {}

    def node_crash(r: FaultRig) -> None:
        r.sleep(BEFORE_S)
        r.kill("node-left")
        spans["killed_at"] = r.pulses()
        r.sleep(1.0)
        spans["restarted_at"] = r.pulses()
        r.restart("node-left")
    o = rig.walk(AFTER_S, node_crash)
    assert len(o.session_ids) == 1 and o.state == "closed" and o.complete is False
    assert {v: o.stored[v] for v in ("right", "rear", "front")} == {v: list(range(o.pulses))
                                                                   for v in ("right", "rear", "front")}
    [(first, end)] = o.missing("left")
    assert first <= spans["killed_at"] < spans["restarted_at"] <= end < o.pulses
    assert o.stored["left"] == list(range(first)) + list(range(end, o.pulses))
    assert o.summary.missing == {"left": [(first, end)], "right": [], "rear": [], "front": []}
    assert o.summary.dropped["left"] == end - first
    node = rig.node_row(o.session_ids[0], "left")  # the restarted node's own count: from where it joined
    assert (node["frames_received"], node["frames_reported"]) == (o.pulses - (end - first), o.pulses - end)
    assert_outage_named(rig, o, "left", first, end)


def overlapping_cycles(report: dict, t0: float, t1: float) -> dict[str, list[int]]:
    """Per foot, the cycles (1-based, heel strike to next) holding a time in [t0, t1]."""
    out = {}
    for side in ("left", "right"):
        hs = sorted(report["events"][side]["heel_strike_s"])
        out[side] = [n for n, (a, b) in enumerate(zip(hs, hs[1:]), 1) if a <= t1 and b >= t0]
    return out


def assert_outage_named(rig: FaultRig, o: Outcome, view: str, first: int, end: int) -> None:
    """The report names exactly the cycles of each foot the dead span touched, each as used
    (from the other views) or excluded, in its JSON, `gaitrig report` and the tablet page."""
    [outage] = o.report["outages"]
    t0, t1 = first / rig.fps, (end - 1) / rig.fps
    assert (outage["view"], outage["first_index"], outage["end_index"]) == (view, first, end)
    assert (outage["t_start_s"], outage["t_end_s"]) == (t0, t1)
    named = {s: [c["cycle"] for c in outage["cycles"] if c["side"] == s] for s in ("left", "right")}
    expected = overlapping_cycles(o.report, t0, t1)
    assert named == expected and expected["left"] and expected["right"]  # about 1 s down: both feet
    used = {s: sum(c["used"] for c in outage["cycles"] if c["side"] == s) for s in ("left", "right")}
    assert all(used[s] <= o.report["cycles_used"][s] for s in used)
    text = describe(outage)
    assert text.startswith(f"{view} view: no frame stored for trigger indices {first}–{end - 1} ")
    for side in ("left", "right"):
        assert f"{side} foot " in text
    r = subprocess.run([sys.executable, "-m", "rig.cli", "report", str(o.session_ids[0]), "--database",
                        str(rig.database)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"  {view}: no frame for trigger indices {first}–{end - 1}\n" in r.stdout
    assert f"    - {text}\n" in r.stdout
    assert rig.report_page_text(o.session_ids[0]).count(text) == 1


def test_a_node_clock_stepping_by_minutes_keeps_frames_on_their_trigger_index(rig):
    try:
        o = rig.walk(AFTER_S, lambda r: (r.sleep(BEFORE_S), r.step_clock("rear", 300.0)))
    finally:
        rig.step_clock("rear", 0.0)
    assert_whole(o)
    assert rig.payload_mismatches(o.session_ids[0]) == 0


# -- the serial line and the disks -------------------------------------------------------------
def test_serial_device_vanishing_line_noise_and_impossible_values_lose_no_frame(rig):
    """The controller's USB device gone for 1.5 s, a noise storm, a burst of impossible
    values: the trigger hardware runs on, so the walk is whole; the bridge reconnects and
    publishes nothing impossible; the belt timeline stays in order."""
    def serial_faults(r: FaultRig) -> None:
        r.sleep(BEFORE_S)
        t = time.time()
        r.belt("vanish 1.5")
        r.watch.event_after("link_restored", t + 1.5, r)
        r.belt("noise 20000")
        r.belt("impossible")
        r.sleep(0.5)
    o = rig.walk(AFTER_S, serial_faults)
    assert_whole(o)
    timeline = rig.belt_timeline(o.session_ids[0])
    assert [t for t, _, _ in timeline] == sorted(t for t, _, _ in timeline)
    assert all(speed <= 1.3 for _, _, speed in timeline)  # never the 65.5 m/s
    assert timeline[-1][1] == 0  # ends stopped


def test_controller_reset_mid_walk_closes_the_session_with_every_frame_sent(rig):
    """The controller reboots mid-walk (new HELLO, clock and counters from zero): the belt
    and the train stop with it, so the session closes — with a frame from every view for
    every pulse the train sent, the reset detected, the belt timeline in order."""
    first = rig.last_session_id() + 1
    rig.belt(f"start {rig.speed_m_s} 0.5")
    rig.watch.wait_state("recording", rig, session_from=first)
    rig.sleep(BEFORE_S + 1.0)
    t = time.time()
    rig.belt("reset")
    assert rig.watch.event_after("controller_reset", t, rig) < 5.0
    o = rig.outcome(first, rig.next_summary(first))
    assert len(o.session_ids) == 1 and o.state == "closed"
    assert o.pulses == rig.pulses() > 60
    assert o.stored == {v: list(range(o.pulses)) for v in ALL_VIEWS}
    timeline = rig.belt_timeline(o.session_ids[0])
    assert [t for t, _, _ in timeline] == sorted(t for t, _, _ in timeline)
    assert timeline[-1][1] == 0 and all(abs(t_s - time.time()) < 120 for t_s, _, _ in timeline)


def test_coordinator_disk_full_mid_walk_is_a_bounded_counted_loss(rig):
    """Room for the database below its reserve for two seconds: the frames that arrive then
    are lost — every one of them counted in the summary, the session closed and analysed."""
    def full_disk(r: FaultRig) -> None:
        r.sleep(BEFORE_S)
        r.fill_coordinator_disk(room_bytes=1e6)  # below the 16 MB reserve
        r.sleep(2.0)
        r.free_coordinator_disk()
    o = rig.walk(AFTER_S, full_disk)
    assert len(o.session_ids) == 1 and o.state == "closed" and o.complete is False
    lost = {v: sum(b - a for a, b in o.missing(v)) for v in ALL_VIEWS}
    assert o.summary.frames_lost == {v: n for v, n in lost.items() if n}
    assert 4 * 60 <= sum(lost.values()) < 4 * 2 * 60 * 3  # about 2 s of 4 views at 60 fps
    assert o.produced - o.frames_stored == sum(lost.values())
    assert "frames lost to a failed database write" in o.summary.problem
    assert o.report is not None


def test_a_node_spool_at_its_limit_loses_a_counted_share_during_a_broker_outage(rig):
    """node-front's spool holds about 40 frames; the broker is down for 3 s (180 frames):
    what did not fit is lost and the node says so in its end count; every other view whole."""
    rig.reconfigure_node("front", "spool_max_mb = 0.02\n")
    try:
        def outage(r: FaultRig) -> None:
            r.sleep(BEFORE_S)
            r.kill_broker()
            r.sleep(3.0)
            r.start_broker()
        o = rig.walk(AFTER_S, outage)
    finally:
        rig.reconfigure_node("front", "")
    assert len(o.session_ids) == 1 and o.state == "closed"
    others = [v for v in ALL_VIEWS if v != "front"]
    assert {v: o.stored[v] for v in others} == {v: list(range(o.pulses)) for v in others}
    lost = sum(b - a for a, b in o.missing("front"))
    assert lost > 0 and rig.node_row(o.session_ids[0], "front")["dropped"] == lost
    assert o.produced - o.frames_stored == lost
