"""When sessions start and stop: the pure state machine, driven by a scripted clock."""
from __future__ import annotations

from rig.config import SessionSettings
from rig.coordinator.sessions import (Arm, BeginClosing, Disarm, FinishSession, OpenSession, Phase,
                                      SessionMachine)

VIEWS = ["left", "right"]


def machine(**kw) -> SessionMachine:
    return SessionMachine(SessionSettings(views=VIEWS, start_after_s=2.0, end_timeout_s=5.0,
                                          walking_speed_min_m_s=0.3, fps=60, **kw))


def walk(m: SessionMachine, t0: float = 0.0) -> list:
    actions = m.belt(t0, True, 1.2, False)
    return actions + m.tick(t0 + 2.0)


def test_belt_at_walking_speed_for_start_after_s_starts_and_arms():
    m = machine()
    assert m.belt(0.0, True, 1.2, False) == []
    assert m.tick(1.9) == []
    assert m.tick(2.0) == [OpenSession("belt running"), Arm(60.0)]
    assert m.phase is Phase.RECORDING


def test_slow_belt_or_a_short_run_does_not_start():
    m = machine()
    m.belt(0.0, True, 0.2, False)
    assert m.tick(10.0) == []
    m.belt(10.0, True, 1.0, False)
    m.belt(11.0, False, 0.0, False)
    assert m.tick(20.0) == []


def close(m: SessionMachine, t: float, pulses: int, frames: dict[str, int]) -> list:
    out = m.trigger(t, False, pulses)
    for view, n in frames.items():
        for _ in range(n):
            m.frame_received(view)
        out += m.node_end(t + 0.1, view, n)
    return out


def test_belt_stop_disarms_then_waits_for_every_node_then_finishes_complete():
    m = machine()
    walk(m)
    assert m.belt(10.0, False, 0.0, False) == [Disarm()]
    assert m.phase is Phase.CLOSING
    out = m.trigger(10.1, False, 480)
    assert out == [BeginClosing("belt stopped", 480)]
    for _ in range(480):
        m.frame_received("left")
    assert m.node_end(10.2, "left", 480) == []
    for _ in range(480):
        m.frame_received("right")
    assert m.node_end(10.3, "right", 480) == [FinishSession(True, ())]
    assert m.phase is Phase.IDLE


def test_a_silent_node_times_out_and_the_session_is_incomplete():
    m = machine()
    walk(m)
    m.belt(10.0, False, 0.0, False)
    close(m, 10.1, 100, {"left": 100})
    assert m.tick(14.0) == []
    assert m.tick(15.2) == [FinishSession(False, ("right",), "no end-of-session count from right")]


def test_a_node_still_finishing_its_backlog_is_waited_for_while_its_frames_arrive():
    m = machine()
    walk(m)
    m.belt(10.0, False, 0.0, False)
    m.trigger(10.1, False, 100)
    for k in range(100):  # one frame every 0.5 s from each node: 50 s, ten times the timeout
        t = 10.1 + 0.5 * k
        m.frame_received("left", t)
        m.frame_received("right", t)
        assert m.tick(t + 0.4) == []
    m.node_end(60.0, "left", 100)
    assert m.node_end(60.0, "right", 100) == [FinishSession(True, ())]


def test_controller_that_never_confirms_the_disarm_is_not_waited_on_forever():
    m = machine()
    walk(m)
    m.belt(10.0, False, 0.0, False)
    assert m.tick(14.9) == []
    assert m.tick(15.0) == [FinishSession(False, ("left", "right"), "no final pulse count from the controller")]


def test_estop_stops_even_a_manual_session():
    m = machine()
    assert m.command(0.0, "start") == [OpenSession("manual start"), Arm(60.0)]
    assert m.belt(1.0, False, 0.0, False) == []  # a standing capture: belt stopped is fine
    assert m.belt(2.0, False, 0.0, True) == [Disarm()]
    assert m.trigger(2.1, False, 120) == [BeginClosing("emergency stop", 120)]


def test_after_an_auto_stop_the_belt_must_rest_before_the_next_start():
    m = machine()
    walk(m)
    m.belt(10.0, True, 1.2, True)  # e-stop while the belt still coasts
    close(m, 10.1, 5, {"left": 5, "right": 5})
    assert m.phase is Phase.IDLE
    assert m.belt(11.0, True, 1.2, False) == []
    assert m.tick(20.0) == [], "restarted although the belt never stopped after the e-stop"
    m.belt(21.0, False, 0.0, False)
    assert walk(m, 22.0)[0] == OpenSession("belt running")


def test_frames_short_of_pulses_make_the_session_incomplete():
    m = machine()
    walk(m)
    m.belt(10.0, False, 0.0, False)
    out = close(m, 10.1, 100, {"left": 100, "right": 98})
    assert out[-1] == FinishSession(False, (), "fewer frames than pulses from right")


def test_a_belt_that_stops_in_one_report_can_start_the_next_session():
    """The bridge publishes on change: 1.2 m/s, then stopped, then 1.2 m/s again."""
    m = machine()
    walk(m)
    m.belt(10.0, False, 0.0, False)
    close(m, 10.1, 5, {"left": 5, "right": 5})
    assert m.phase is Phase.IDLE
    assert walk(m, 20.0)[0] == OpenSession("belt running")


# -- resuming after a restart of the coordinator ------------------------------------------------
def resumed(phase: Phase, **kw) -> tuple[SessionMachine, list]:
    m = machine()
    args = dict(manual=False, stop_reason=None, train_started=True, pulses_sent=None, ends={},
                received={"left": 100, "right": 100}) | kw
    return m, m.resume(50.0, phase, **args)


def test_a_resumed_recording_goes_on_while_the_belt_runs_and_no_second_session_opens():
    m, actions = resumed(Phase.RECORDING)
    assert actions == []
    assert m.belt(50.1, True, 1.2, False) == [] and m.tick(60.0) == []
    assert m.phase is Phase.RECORDING
    assert m.belt(61.0, False, 0.0, False) == [Disarm()]  # the belt stops: it closes as usual
    for view in VIEWS:
        for _ in range(380):
            m.frame_received(view)
    assert close(m, 61.2, 480, {v: 480 for v in VIEWS})[-1] == FinishSession(True, ())


def test_a_resumed_recording_whose_train_never_reported_armed_arms_again():
    assert resumed(Phase.RECORDING, train_started=False)[1] == [Arm(60.0)]


def test_a_resumed_closing_without_the_final_count_disarms_again_and_keeps_the_counts():
    m, actions = resumed(Phase.CLOSING, stop_reason="belt stopped")
    assert actions == [Disarm()] and m.awaiting_train_end
    assert m.trigger(51.0, False, 100) == [BeginClosing("belt stopped", 100)]
    assert m.node_end(51.1, "left", 100) == []
    assert m.node_end(51.2, "right", 100) == [FinishSession(True, ())]


def test_a_resumed_closing_whose_counts_are_all_in_finishes_at_once():
    _, actions = resumed(Phase.CLOSING, stop_reason="manual stop", pulses_sent=100,
                         ends={"left": 100, "right": 100})
    assert actions == [FinishSession(True, ())]


def test_a_train_lost_to_a_controller_reset_ends_at_the_highest_frame_index_stored():
    """The bridge reports the dead train with an upper bound (pulses by the time the reset
    was seen) while the session still records; the belt's stop then closes it at that bound,
    and the finish corrects the count to the frames the cameras stored: complete."""
    m = machine()
    walk(m)
    for k in range(300):
        for view in VIEWS:
            m.frame_received(view, None, k)
    assert m.trigger(7.0, False, 309, lost=True) == []  # still recording: kept
    assert m.phase is Phase.RECORDING
    assert m.belt(7.1, False, 0.0, False) == [Disarm(), BeginClosing("belt stopped", 309)]
    assert m.trigger(7.2, False, 0) == []  # the rebooted controller's own report changes nothing
    assert m.node_end(7.3, "left", 300) == []
    assert m.node_end(7.4, "right", 300) == [FinishSession(True, (), None, 300)]
