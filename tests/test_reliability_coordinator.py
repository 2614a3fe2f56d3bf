"""Issue 9 on the coordinator's side, as a hostile tester would try it: a real Mosquitto, a
real coordinator with SQLite, and this test playing the bridge and the four camera nodes
(frames of the simulated walker, encoded as a node encodes them). Each test walks one
session and checks what was stored against what was sent, frame for frame."""
from __future__ import annotations

import json
import logging
import math
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_rig import next_state

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import (JSON_PAYLOADS, BeltState, CommandReply, DiagCommand, DiagEvent, DiagHealth, DiagReply,
                              ErasedSessions, KeypointFrame, LinkState, NodeEnd, NodeInfo, PayloadError, Presence,
                              SessionCommand, SessionState, SessionSummary, TreadmillCommand, TreadmillEvent,
                              TriggerState, decode, decode_keypoints, encode_keypoints)
from rig.config import ALL_VIEWS, CoordinatorConfig, SessionSettings, StorageSettings
from rig.coordinator.analysis import analyze_session
from rig.coordinator.daemon import Coordinator
from rig.coordinator.storage import Storage
from rig.sim.walker import SimulatedWalker, WalkerParams

FPS = 60.0
N = 360  # pulses per walk: 6 s at 60 Hz
VIEWS = list(ALL_VIEWS)
WALKER = SimulatedWalker(WalkerParams(), fps=FPS, seed=0)
LANDMARKS = WALKER.render(np.arange(2000), VIEWS)


def wait_for(condition, timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


class FakeRig:
    """Plays the bridge (belt, trigger train) and the nodes (info, frames, end counts)."""

    def __init__(self, mqtt, name: str = "test-rig"):
        self.bus = BusClient(mqtt, name)
        self.states: queue.Queue = queue.Queue()
        self.summaries: queue.Queue = queue.Queue()
        self.health: list[DiagHealth] = []
        self.bus.on(topics.SESSION_STATE, lambda m: self.states.put(decode(SessionState, m.payload)))
        self.bus.on(topics.SESSION_SUMMARY, lambda m: self.summaries.put(decode(SessionSummary, m.payload)))
        self.bus.subscribe(topics.DIAG_HEALTH.path(mqtt.rig_id, daemon="coordinator"),
                           lambda m: self.health.append(decode(DiagHealth, m.payload)))
        self.bus.start()
        self.first_pulse_t = 0.0
        self.session_id = 0
        for view in VIEWS:
            h = WALKER.header(view)
            self.send(topics.NODE_INFO.path(mqtt.rig_id, view=view), NodeInfo(
                view=view, width=h.width, height=h.height, facing=h.facing, camera="simulated",
                model="simulated walker", simulated=True).encode(), retain=True)

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.bus.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def path(self, topic: topics.Topic, **fields) -> str:
        return topic.path(self.bus.rig_id, **fields)

    def belt(self, running: bool) -> None:
        self.send(self.path(topics.TREADMILL_STATE), BeltState(
            t=time.time(), running=running, speed_m_s=1.2 if running else 0.0, incline_pct=0.0, estop=False).encode())

    def wait_state(self, state: str, timeout_s: float = 15.0) -> SessionState:
        return next_state(self.states, state, timeout_s)

    def start(self, pulses: int = N) -> int:
        """Belt on; the session opens; the train runs and has already sent ``pulses``."""
        self.belt(True)
        self.session_id = self.wait_state("recording").session_id
        self.first_pulse_t = time.time() - pulses / FPS - 1.0
        self.send(self.path(topics.TREADMILL_TRIGGER), TriggerState(
            t=time.time(), armed=True, rate_hz=FPS, first_pulse_t=self.first_pulse_t, pulses_sent=pulses).encode())
        return self.session_id

    def frame(self, view: str, index: int, sid: int | None = None, shift_px: float = 0.0) -> bytes:
        lm = LANDMARKS[view][index % len(LANDMARKS[view])].copy()
        lm[:, 0] += shift_px
        return encode_keypoints(KeypointFrame(sid or self.session_id, index, self.first_pulse_t + index / FPS, lm,
                                              simulated=True))

    def frames(self, indices, views=VIEWS, sid: int | None = None) -> None:
        infos = [self.bus.publish(self.path(topics.NODE_KEYPOINTS, view=v), self.frame(v, int(i), sid), qos=1)
                 for i in indices for v in views]
        for info in infos:
            info.wait_for_publish(10)

    def stop(self, pulses: int = N) -> None:
        """Belt off; the train reports its final count."""
        self.belt(False)
        self.send(self.path(topics.TREADMILL_TRIGGER), TriggerState(
            t=time.time(), armed=False, rate_hz=FPS, first_pulse_t=self.first_pulse_t, pulses_sent=pulses).encode())

    def end(self, view: str, frames: int = N, *, topic_view: str | None = None, sid: int | None = None,
            captured: int | None = None) -> None:
        self.send(self.path(topics.NODE_END, view=topic_view or view), NodeEnd(
            session_id=sid or self.session_id, view=view, frames=frames, captured=frames if captured is None
            else captured, missed_triggers=0, dropped=0, simulated=True).encode())

    def walk(self, between=None, n: int = N) -> SessionSummary:
        """A whole session, every pulse from every view; ``between`` runs mid-walk."""
        self.start(n)
        self.frames(range(n // 2))
        if between:
            between()
        self.frames(range(n // 2, n))
        self.stop(n)
        for v in VIEWS:
            self.end(v, n)
        return self.summary()

    def summary(self, timeout_s: float = 30.0) -> SessionSummary:
        summary = self.summaries.get(timeout=timeout_s)
        assert summary.session_id == self.session_id
        return summary

    def close(self) -> None:
        self.bus.close()


class Running:
    """The coordinator in a thread of this process, as in tests/test_rig.py."""

    def __init__(self, broker, db: Path, end_timeout_s: float = 20.0):
        self.db = db
        self.config = CoordinatorConfig(mqtt=broker.settings(), storage=StorageSettings(database=db),
                                        session=SessionSettings(start_after_s=0.2, end_timeout_s=end_timeout_s,
                                                                fps=FPS, views=VIEWS))
        self.coordinator = Coordinator(self.config)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.coordinator.run, args=(self.stop,), daemon=True)
        self.thread.start()
        assert self.coordinator.bus.wait_connected(10)
        self.rig = FakeRig(broker.settings())

    @property
    def rejected(self) -> dict[str, int]:
        return dict(self.coordinator.bus.rejected)

    def wait_rejected(self, expected: dict[str, int]) -> None:
        wait_for(lambda: all(self.rejected.get(k, 0) >= n for k, n in expected.items()), what=f"rejections {expected}")
        time.sleep(0.3)  # nothing more arrives
        assert {k: self.rejected.get(k, 0) for k in expected} == expected

    def close(self) -> None:
        self.rig.close()
        self.stop.set()
        self.thread.join(15)


@pytest.fixture
def coord(broker, tmp_path):
    r = Running(broker, tmp_path / "gaitrig.sqlite")
    yield r
    r.close()


def assert_whole(summary: SessionSummary, pulses: int = N) -> None:
    assert summary.pulses_sent == pulses
    assert summary.frames == {v: pulses for v in VIEWS}
    assert summary.dropped == {v: 0 for v in VIEWS}
    assert (summary.complete, summary.problem, summary.conflicts, summary.frames_lost) == (True, None, {}, {})


def stored(db: Path, sid: int) -> dict[str, tuple[int, int]]:
    """Per view: (frames_received counter, keypoint rows) from a separate connection."""
    with sqlite3.connect(db) as conn:
        counts = dict(conn.execute("SELECT view, frames_received FROM session_nodes WHERE session_id = ?", (sid,)))
        rows = dict(conn.execute("SELECT view, count(*) FROM keypoints WHERE session_id = ? GROUP BY view", (sid,)))
    return {v: (counts[v], rows.get(v, 0)) for v in counts}


# -- 1. one NaN must not kill the coordinator ---------------------------------------------------
def test_nan_and_infinity_on_treadmill_state_mid_session_are_rejected_and_the_session_completes(coord):
    hostile = [b'{"v":1,"t":1e9,"running":true,"speed_m_s":1.2,"incline_pct":NaN,"estop":false}',
               b'{"v":1,"t":1e9,"running":true,"speed_m_s":Infinity,"incline_pct":0,"estop":false}',
               b'{"v":1,"t":1e999,"running":true,"speed_m_s":1.2,"incline_pct":0,"estop":false}',
               b'{"v":1,"t":1e9,"running":true,"speed_m_s":65.535,"incline_pct":0,"estop":false}']

    def attack():
        for payload in hostile:
            coord.rig.send(coord.rig.path(topics.TREADMILL_STATE), payload)
    summary = coord.rig.walk(between=attack)
    assert coord.rejected == {"BeltState": 4}
    assert_whole(summary)
    assert summary.reason == "belt stopped" and summary.analysis_error is None
    assert summary.cadence_steps_per_min is not None
    assert coord.thread.is_alive()
    storage = Storage(coord.db)
    assert storage.session(summary.session_id).state == "closed"
    assert stored(coord.db, summary.session_id) == {v: (N, N) for v in VIEWS}


def test_a_keypoint_frame_with_a_nan_time_is_rejected_and_the_session_closes_analysed(coord):
    import struct

    def attack():
        good = coord.rig.frame("left", N - 1)
        for t in (float("nan"), float("inf"), -1.0):
            coord.rig.send(coord.rig.path(topics.NODE_KEYPOINTS, view="left"), good[:10] + struct.pack("<d", t) + good[18:])
    summary = coord.rig.walk(between=attack)
    assert coord.rejected == {"KeypointFrame": 3}
    assert_whole(summary)
    assert summary.analysis_error is None and summary.cadence_steps_per_min is not None


def test_a_stored_frame_with_a_nan_time_no_longer_stops_the_analysis(tmp_path):
    """A database written before frames were checked on receipt: the analysis leaves the
    unreadable frame out and still reports, instead of raising at close."""
    import struct
    storage = Storage(tmp_path / "old.sqlite")
    sid = storage.open_session("belt running", 1.7e9, FPS, ["left", "right"])
    first = 1.7e9 + 0.5
    storage.set_train(sid, first, N)
    for view in ("left", "right"):
        h = WALKER.header(view)
        storage.set_node_info(view, NodeInfo(view=view, width=h.width, height=h.height, facing=h.facing,
                                             camera="simulated", model="walker", simulated=True).model_dump_json())
        for i in range(N):
            payload = encode_keypoints(KeypointFrame(sid, i, first + i / FPS, LANDMARKS[view][i], True))
            if view == "left" and i == 100:
                payload = payload[:10] + struct.pack("<d", float("nan")) + payload[18:]
            storage.add_frame(sid, view, i, payload)
        storage.add_belt_sample(sid, first, True, 1.2, 0.0, False)
    storage.close_session(sid, first + N / FPS, True)
    result = analyze_session(storage, sid, 0.3)
    assert result.error is None and result.report["spatiotemporal"]["cadence_steps_per_min"] > 0
    assert storage.report(sid)[1] is None


def test_a_session_closed_but_never_analysed_is_analysed_at_start_up(broker, tmp_path):
    db = tmp_path / "gaitrig.sqlite"
    storage = Storage(db)
    sid = storage.open_session("belt running", 1.7e9, FPS, VIEWS)
    first = 1.7e9 + 0.5
    storage.set_train(sid, first, N)
    for view in VIEWS:
        h = WALKER.header(view)
        storage.set_node_info(view, NodeInfo(view=view, width=h.width, height=h.height, facing=h.facing,
                                             camera="simulated", model="walker", simulated=True).model_dump_json())
        for i in range(N):
            storage.add_frame(sid, view, i, encode_keypoints(KeypointFrame(sid, i, first + i / FPS,
                                                                           LANDMARKS[view][i], True)))
    storage.add_belt_sample(sid, first, True, 1.2, 0.0, False)
    storage.close_session(sid, first + N / FPS, True)  # ... and the coordinator died before analysing
    storage.close()
    assert Storage(db).unanalysed_sessions() == [sid]
    r = Running(broker, db)
    try:
        wait_for(lambda: Storage(db).report(sid) is not None, what="the analysis of the old session")
        report_json, error = Storage(db).report(sid)
        assert error is None and '"cadence_steps_per_min"' in report_json
        assert Storage(db).unanalysed_sessions() == []
    finally:
        r.close()


# -- 3. node messages are not trusted beyond their topic ------------------------------------------
def test_frames_and_end_counts_for_a_closed_unknown_or_future_session_are_rejected(coord):
    summary = coord.rig.walk()
    assert_whole(summary)
    rig, sid = coord.rig, summary.session_id
    rig.frames(range(N, N + 3), views=["left"], sid=sid)  # the tablet showed 643 of 640
    rig.frames([0], views=["right"], sid=sid + 1)  # the next session, not opened yet
    rig.frames([0], views=["rear"], sid=999)
    rig.end("left", N + 3, sid=sid)
    rig.end("front", 5, sid=999)
    coord.wait_rejected({"frame_wrong_session": 5, "end_wrong_session": 2})
    assert stored(coord.db, sid) == {v: (N, N) for v in VIEWS}
    assert {n.view: n.frames_reported for n in Storage(coord.db).nodes(sid)} == {v: N for v in VIEWS}
    assert Storage(coord.db).session(sid + 1) is None


def test_an_end_count_takes_its_view_from_the_topic(coord):
    rig = coord.rig
    rig.start()
    rig.frames(range(N))
    rig.stop()
    for v in ("left", "right", "front"):
        rig.end(v)
    rig.end("rear", N, topic_view="left", captured=999)  # node-left forging rear's count
    coord.wait_rejected({"end_view_mismatch": 1})
    assert rig.summaries.empty(), "the session closed on a forged end count"
    rig.end("rear")
    summary = rig.summary()
    assert_whole(summary)
    assert {n.view: n.captured for n in Storage(coord.db).nodes(summary.session_id)} == {v: N for v in VIEWS}


def test_a_frame_the_trigger_train_has_not_reached_is_rejected(coord):
    rig = coord.rig

    def ahead():  # the train has sent N pulses: index N + 600 is ten seconds in the future
        rig.frames([N + 600, 100_000], views=["left"])
    summary = rig.walk(between=ahead)
    assert coord.rejected == {"frame_index_ahead": 2}
    assert_whole(summary)
    assert stored(coord.db, summary.session_id) == {v: (N, N) for v in VIEWS}


def test_after_the_train_stops_no_index_at_or_beyond_its_final_count_is_taken(coord):
    rig = coord.rig
    rig.start(pulses=N + 100)  # the train runs on past N ...
    rig.frames(range(N))
    rig.stop(pulses=N)  # ... but its final count says N
    rig.frames([N, N + 1], views=["front"])
    for v in VIEWS:
        rig.end(v)
    summary = rig.summary()
    assert coord.rejected == {"frame_index_ahead": 2}
    assert_whole(summary)


def test_a_different_second_frame_for_a_stored_index_is_a_counted_conflict_and_the_first_stays(coord):
    rig = coord.rig

    def forge():
        rig.send(rig.path(topics.NODE_KEYPOINTS, view="left"), rig.frame("left", 10))  # a redelivery: fine
        rig.send(rig.path(topics.NODE_KEYPOINTS, view="left"), rig.frame("left", 10, shift_px=40.0))
        rig.send(rig.path(topics.NODE_KEYPOINTS, view="rear"), rig.frame("rear", 20, shift_px=-3.0))
    summary = rig.walk(between=forge)
    assert coord.rejected == {"frame_conflict": 2}
    assert summary.frames == {v: N for v in VIEWS} and summary.conflicts == {"left": 1, "rear": 1}
    assert not summary.complete
    assert summary.problem == "conflicting frames for an index already stored (first kept): left 1, rear 1"
    assert list(Storage(coord.db).frames(summary.session_id, "left"))[10] == rig.frame("left", 10)
    assert stored(coord.db, summary.session_id) == {v: (N, N) for v in VIEWS}
    # (a health message may go out between the two conflicts: wait for one after both)
    both = lambda h: (h.figures.get("frame_conflicts"), h.figures.get("rejected_frame_conflict")) == (2, 2)  # noqa: E731
    wait_for(lambda: any(both(h) for h in rig.health), timeout_s=15, what="both conflicts on diagnostics")
    assert "frame_conflicts" in next(h for h in rig.health if both(h)).problems
    assert all(h.figures.get("frame_conflicts", 0) <= 2 for h in rig.health)  # counted once each


def test_conflicts_and_rejections_stay_with_the_session_across_a_coordinator_restart(broker, tmp_path):
    """Counted before the restart, kept in the database, taken up by the resumed session and
    added to: the summary, diagnostics and the database say the same after it."""
    db = tmp_path / "gaitrig.sqlite"
    first = Running(broker, db)
    rig = first.rig
    sid = rig.start()
    rig.frames(range(N // 2))
    rig.send(rig.path(topics.NODE_KEYPOINTS, view="left"), rig.frame("left", 10, shift_px=40.0))
    rig.send(rig.path(topics.TREADMILL_STATE), b'{"v":1,"t":1e9,"running":true,"speed_m_s":NaN}')
    first.wait_rejected({"frame_conflict": 1, "BeltState": 1})
    first.close()
    second = Running(broker, db)
    rig = second.rig
    try:
        rig.session_id, rig.first_pulse_t = sid, Storage(db).session(sid).first_pulse_t
        rig.send(rig.path(topics.NODE_KEYPOINTS, view="rear"), rig.frame("rear", 20, shift_px=-3.0))
        rig.send(rig.path(topics.SESSION_CMD), b'{"v":1,"action":"start","by":1}')
        second.wait_rejected({"frame_conflict": 1, "SessionCommand": 1})
        rig.frames(range(N // 2, N))
        rig.stop()
        for v in VIEWS:
            rig.end(v)
        summary = rig.summary()
        wait_for(lambda: any(h.figures.get("frame_conflicts") == 2 for h in rig.health), timeout_s=15,
                 what="both conflicts on diagnostics")
    finally:
        second.close()
    assert summary.session_id == sid and summary.frames == {v: N for v in VIEWS}
    assert summary.conflicts == {"left": 1, "rear": 1}
    assert summary.rejected == {"frame_conflict": 2, "BeltState": 1, "SessionCommand": 1}
    assert summary.problem == "conflicting frames for an index already stored (first kept): left 1, rear 1"
    assert Storage(db).counts(sid) == {("conflicts", "left"): 1, ("conflicts", "rear"): 1,
                                       ("rejected", "frame_conflict"): 2, ("rejected", "BeltState"): 1,
                                       ("rejected", "SessionCommand"): 1}


# -- 5. outside input never reaches a log line unbounded ---------------------------------------
def test_a_20_mb_by_field_is_rejected_and_never_logged(coord, caplog):
    caplog.set_level(logging.DEBUG)  # the rejections after the first of a kind too
    rig = coord.rig
    cmd = rig.path(topics.SESSION_CMD)
    rig.send(cmd, b'{"v":1,"action":"start","by":"' + b"x" * 20_000_000 + b'"}')
    rig.send(cmd, b'{"v":1,"action":"start","' + b"k" * 1_000_000 + b'":1}')
    rig.send(cmd, b'{"v":1,"action":"start","by":"' + b"y" * 65 + b'"}')
    coord.wait_rejected({"SessionCommand": 3})
    assert rig.states.empty() or all(s.state == "idle" for s in list(rig.states.queue))
    rig.send(cmd, b'{"v":1,"action":"start","by":"tech\\nERROR forged line"}')
    rig.wait_state("recording")
    assert max(len(r.getMessage()) for r in caplog.records) < 1000
    assert any("by tech\\nERROR forged line" in r.getMessage() for r in caplog.records)
    assert not any("\n" in r.getMessage() for r in caplog.records)


# -- 4. a full disk: a bounded, announced loss; the daemon, the database and the session survive ------
FILE_LIMIT_BYTES = 1_500_000  # the database's log reaches it about 4000 frames into the second walk
RESERVE_MB = 0.3
LIMITED = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
           f"resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_LIMIT_BYTES}, {FILE_LIMIT_BYTES})); "
           "from rig.cli import main; sys.exit(main(sys.argv[1:]))")


def test_a_full_disk_mid_session_loses_a_counted_announced_share_of_frames_and_nothing_else(broker, tmp_path):
    """The coordinator's file size limit (RLIMIT_FSIZE, as a full disk) is reached in the
    second walk: frames beyond the reserve are counted as lost, the session still closes."""
    db, cfg = tmp_path / "gaitrig.sqlite", tmp_path / "coordinator.toml"
    cfg.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nrig_id = "test"\n'
                   f'[session]\nstart_after_s = 0.2\nend_timeout_s = 20\nfps = {FPS}\n'
                   f'[storage]\ndatabase = "{db}"\nreserve_mb = {RESERVE_MB}\n')
    proc = subprocess.Popen([sys.executable, "-c", LIMITED, "coordinator", "--config", str(cfg)],
                            stderr=subprocess.PIPE, text=True)
    rig = FakeRig(broker.settings())
    try:
        rig.wait_state("idle", timeout_s=60)  # a new interpreter importing numpy and scipy on a loaded machine
        first = rig.walk(n=120)
        assert_whole(first, 120)
        n = 1500  # 6000 frames: more than the file limit holds
        second = rig.walk(n=n)
        alive = proc.poll() is None
        lost = sum(second.frames_lost.values())
        wait_for(lambda: any(h.figures.get("frames_lost_db") == lost for h in rig.health), timeout_s=15,
                 what="the loss on diagnostics")
        health = next(h for h in rig.health if h.figures.get("frames_lost_db") == lost)
    finally:
        rig.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        print(err[-3000:])  # shown if the test fails
    assert alive and proc.returncode == 0, err[-3000:]
    assert 0 < lost < 4 * n
    assert {v: second.frames[v] + second.frames_lost.get(v, 0) for v in VIEWS} == {v: n for v in VIEWS}
    assert not second.complete and "frames lost to a failed database write" in second.problem
    problem = health.problems["disk_full"]
    assert problem.startswith("disk full: ") and problem.endswith(f"; {lost} frames lost"), problem
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "database write failed (disk full: " in errors[0], errors
    assert "Traceback" not in err
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        sessions = conn.execute("SELECT id, state, complete FROM sessions ORDER BY id").fetchall()
    assert sessions == [(first.session_id, "closed", 1), (second.session_id, "closed", 0)]
    assert stored(db, first.session_id) == {v: (120, 120) for v in VIEWS}
    assert Storage(db).report(first.session_id)[1] is None
    assert stored(db, second.session_id) == {v: (second.frames[v], second.frames[v]) for v in VIEWS}


@pytest.fixture
def file_limit():
    """This process's file size limit lowered for one test (as a full disk), then restored."""
    import resource
    saved, handler = resource.getrlimit(resource.RLIMIT_FSIZE), signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def limit(n_bytes: int) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, saved[1]))
    yield limit
    resource.setrlimit(resource.RLIMIT_FSIZE, saved)
    signal.signal(signal.SIGXFSZ, handler)


def test_a_write_that_hits_the_wall_rolls_back_exactly_the_frames_it_held(tmp_path, file_limit):
    from rig.coordinator.diskguard import DiskGuard
    db = tmp_path / "g.sqlite"
    storage, lost = Storage(db), []
    guard = DiskGuard(lambda: storage, 0.0, lambda sid, view, n: lost.append((sid, view, n)))
    earlier = storage.open_session("belt running", T, FPS, ["left"])
    for i in range(50):
        storage.add_frame(earlier, "left", i, rig_frame(earlier, i))
    storage.close_session(earlier, T + 1, True)
    sid = storage.open_session("belt running", T + 10, FPS, ["left"])
    file_limit(300_000)
    added = committed = 0
    with pytest.raises(sqlite3.OperationalError) as failure:
        while True:
            storage.add_frame(sid, "left", added, rig_frame(sid, added))
            added += 1
            if added % 30 == 0:
                storage.commit()
                committed = added
    guard.failed(failure.value)
    assert lost == [(sid, "left", added - committed)] and guard.frames_lost == added - committed
    assert guard.problem.startswith("disk full: ")
    guard.durable(storage.close_session, sid, T + 20, False)
    assert storage.session(sid).state == "closed", "the session's closing did not go in after the rollback"
    file_limit(2**40)
    storage.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert stored(db, sid) == {"left": (committed, committed)}
    assert stored(db, earlier) == {"left": (50, 50)}


def rig_frame(sid: int, i: int) -> bytes:
    return encode_keypoints(KeypointFrame(sid, i, T + i / FPS, LANDMARKS["left"][i % 2000], True))


# -- 7. fuzz: every decoder answers a model or a PayloadError, nothing else ---------------------------
T = 1_750_000_000.0
VALID: dict[type, dict] = {
    BeltState: dict(t=T, running=True, speed_m_s=1.2, incline_pct=2.0, estop=False),
    TriggerState: dict(t=T, armed=True, rate_hz=60.0, first_pulse_t=T, pulses_sent=10),
    TreadmillEvent: dict(t=T, kind="fault", detail="belt motor", code=3),
    TreadmillCommand: dict(id="arm-1", cmd="arm", rate_hz=60.0),
    CommandReply: dict(id="arm-1", ok=False, error="NOT_ARMED", t=T),
    LinkState: dict(t=T, connected=True, port="/dev/ttyACM0", firmware="1.0", protocol=1, clock_hz=1_000_000,
                    rejected_frames=1, lost_frames=0, reconnects=2, clock_drift_ppm=-12.5, controller_silent=False),
    SessionState: dict(t=T, state="recording", session_id=3, reason="belt running", views=["left"], pulses_sent=None),
    SessionCommand: dict(action="start", by="tablet"),
    NodeEnd: dict(session_id=3, view="left", frames=10, captured=10, missed_triggers=0, dropped=0),
    NodeInfo: dict(view="left", width=1456, height=1088, facing="left", camera="simulated", model="walker"),
    SessionSummary: dict(session_id=3, started_t=T, ended_t=T + 9, reason="belt stopped", pulses_sent=10,
                         frames={"left": 10}, dropped={"left": 0}, complete=True, cadence_steps_per_min=110.0),
    ErasedSessions: dict(t=T, session_ids=[3, 7]),
    Presence: dict(daemon="coordinator", online=True, seq=5, t=T),
    DiagCommand: dict(cmd="set", args=["session.fps", "60"]),
    DiagReply: dict(daemon="coordinator", cmd="ping", ok=True, result={"pong": True}, t=T),
    DiagHealth: dict(daemon="coordinator", t=T, period_s=5.0, uptime_s=1.0, cpu_load_1m=0.5, cpu_temp_c=None,
                     mem_rss_mb=50.0, mem_available_mb=900.0, disk_free_mb=9000.0, broker_reconnects=0,
                     rejected_payloads=0, commands_refused=0, figures={"frames": 3}, problems={}),
    DiagEvent: dict(daemon="coordinator", t=T, kind="disk_full", level="error", active=True),
}
HOSTILE_VALUES = [float("nan"), float("inf"), float("-inf"), 1e308, -1e308, -1, 0, 2**64, -(2**63), "x" * 70_000,
                  "", None, True, [], {}, [float("nan")], {"left": float("nan")}, "left", "2001-01-01", 1e9, 5e9,
                  65.535, 1001]
HOSTILE = st.sampled_from(HOSTILE_VALUES)
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                                                     max_size=4), max_leaves=12)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_every_json_payload_has_a_valid_example():
    assert set(VALID) == set(JSON_PAYLOADS)
    for model, example in VALID.items():
        assert decode(model, json.dumps(example).encode()) == model(**example)


def only_finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(only_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(only_finite(v) for v in value)
    return True


def decoded_or_rejected(model, payload: bytes):
    """The property: a model with finite numbers only, or a PayloadError of the model's kind."""
    try:
        result = decode(model, payload)
    except PayloadError as e:
        assert e.kind == model.__name__ and len(str(e)) < 400
        return None
    assert isinstance(result, model) and only_finite(result.model_dump())
    return result


@FUZZ
@given(model=st.sampled_from(JSON_PAYLOADS), payload=st.binary(max_size=300))
def test_random_bytes_decode_or_are_rejected(model, payload):
    decoded_or_rejected(model, payload)


@FUZZ
@given(model=st.sampled_from(JSON_PAYLOADS), value=JSON_VALUES)
def test_random_json_decodes_or_is_rejected(model, value):
    decoded_or_rejected(model, json.dumps(value).encode())


@FUZZ
@given(model=st.sampled_from(JSON_PAYLOADS), data=st.data(), hostile=HOSTILE)
def test_a_valid_payload_with_one_hostile_field_decodes_or_is_rejected(model, data, hostile):
    example = dict(VALID[model], v=1)
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    key = data.draw(st.sampled_from(sorted(example)))
    if action == "replace":
        example[key] = hostile
    elif action == "delete":
        del example[key]
    else:
        example[data.draw(st.text(min_size=1, max_size=30))] = hostile
    result = decoded_or_rejected(model, json.dumps(example).encode())
    if result is not None and action == "replace" and isinstance(hostile, float) and not math.isfinite(hostile):
        pytest.fail(f"{model.__name__}.{key} accepted {hostile}")


def valid_frame(found: bool) -> bytes:
    lm = LANDMARKS["left"][7] if found else None
    return encode_keypoints(KeypointFrame(3, 7, T, lm, simulated=True))


def frame_or_rejected(payload: bytes) -> None:
    try:
        frame = decode_keypoints(payload)
    except PayloadError as e:
        assert e.kind == "KeypointFrame"
        return
    assert math.isfinite(frame.t) and frame.session_id >= 1
    assert frame.lm is None or (frame.lm.shape == (33, 4) and np.isfinite(frame.lm).all())


@FUZZ
@given(payload=st.binary(max_size=400))
def test_random_bytes_as_a_keypoint_frame_decode_or_are_rejected(payload):
    frame_or_rejected(payload)


@FUZZ
@given(found=st.booleans(), data=st.data())
def test_a_mutated_keypoint_frame_decodes_or_is_rejected(found, data):
    payload = bytearray(valid_frame(found))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(payload) - 1))
        payload[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(payload) + 40))
    frame_or_rejected(bytes(payload[:cut]) + bytes(max(cut - len(payload), 0)))


def test_keypoint_frames_with_a_nan_or_infinite_time_or_unknown_flags_are_rejected():
    import struct
    good = valid_frame(True)
    for t in (float("nan"), float("inf"), float("-inf"), -1.0, 5e9):
        with pytest.raises(PayloadError, match="is not a Unix time"):
            decode_keypoints(good[:10] + struct.pack("<d", t) + good[18:])
    with pytest.raises(PayloadError, match="unknown flags 0x83"):
        decode_keypoints(good[:1] + b"\x83" + good[2:])
    with pytest.raises(PayloadError, match="session id 0"):
        decode_keypoints(good[:2] + bytes(4) + good[6:])
    lm = LANDMARKS["left"][7].copy()
    lm[25] = np.nan  # one landmark the model could not place: sent as not seen, not as garbage
    back = decode_keypoints(encode_keypoints(KeypointFrame(3, 7, T, lm)))
    assert back.lm[25].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert np.abs(back.lm[24, :2] - lm[24, :2]).max() <= 1 / 16


def refused(model, payload: bytes) -> bool:
    try:
        decode_keypoints(payload) if model is KeypointFrame else decode(model, payload)
    except PayloadError:
        return True
    return False


def hostile_payloads(rng, model, n: int) -> list[bytes]:
    """Mutations of a valid payload (one field hostile, or random bytes, or a cut) that its
    decoder refuses: each must be rejected once, and change nothing."""
    out: list[bytes] = []
    while len(out) < n:
        if model is KeypointFrame:
            payload = bytearray(valid_frame(rng.random() < 0.5))
            payload[rng.randrange(len(payload))] = rng.randrange(256)
            payload = bytes(payload[:rng.randrange(len(payload) + 1)])
        elif rng.random() < 0.8:
            example = dict(VALID[model], v=1)
            example[rng.choice(sorted(example))] = rng.choice(HOSTILE_VALUES)
            payload = json.dumps(example).encode()
        else:
            payload = rng.randbytes(rng.randrange(80))
        if refused(model, payload):
            out.append(payload)
    return out


def test_mutated_payloads_on_every_coordinator_topic_are_counted_and_change_nothing(coord):
    import random
    rng, rig = random.Random(9), coord.rig
    targets = {rig.path(topics.TREADMILL_STATE): BeltState, rig.path(topics.TREADMILL_TRIGGER): TriggerState,
               rig.path(topics.TREADMILL_CMD_REPLY): CommandReply, rig.path(topics.SESSION_CMD): SessionCommand,
               rig.path(topics.NODE_END, view="left"): NodeEnd, rig.path(topics.NODE_INFO, view="rear"): NodeInfo,
               rig.path(topics.NODE_KEYPOINTS, view="front"): KeypointFrame}
    per_topic = 40

    def fuzz():
        for topic, model in targets.items():
            for payload in hostile_payloads(rng, model, per_topic):
                rig.send(topic, payload)
    summary = rig.walk(between=fuzz)
    assert coord.rejected == {model.__name__: per_topic for model in targets.values()}
    assert_whole(summary)
    assert stored(coord.db, summary.session_id) == {v: (N, N) for v in VIEWS}
    assert coord.thread.is_alive() and coord.coordinator.internal_errors == 0


# -- the intake rules, pure ------------------------------------------------------------------------
def test_the_index_bound_follows_the_train_from_session_start_to_final_count():
    from rig.coordinator.intake import Train
    train = Train(session_id=1, opened_t=T, fps=60.0)
    assert train.max_index(T + 1.0) == 90  # (1 s + 0.5 s tolerance) × 60 Hz: not armed yet, from the start
    train.report(TriggerState(t=T + 2, armed=True, rate_hz=100.0, first_pulse_t=T + 2.0, pulses_sent=0))
    assert train.max_index(T + 3.0) == 150  # from the first pulse, at the train's own rate
    train.report(TriggerState(t=T + 9, armed=False, rate_hz=100.0, first_pulse_t=T + 2.0, pulses_sent=700))
    assert train.first_pulse_t == T + 2.0, "a disarmed report does not move the train"
    train.final_pulses = 700
    assert train.max_index(T + 60.0) == 699
