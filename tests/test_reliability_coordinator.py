"""Issue 9 on the coordinator's side, as a hostile tester would try it: a real Mosquitto, a
real coordinator with SQLite, and this test playing the bridge and the four camera nodes
(frames of the simulated walker, encoded as a node encodes them). Each test walks one
session and checks what was stored against what was sent, frame for frame."""
from __future__ import annotations

import logging
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

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import (BeltState, DiagHealth, KeypointFrame, NodeEnd, NodeInfo, SessionState, SessionSummary,
                              TriggerState, decode, encode_keypoints)
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
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                s = self.states.get(timeout=0.2)
            except queue.Empty:
                continue
            if s.state == state:
                return s
        pytest.fail(f"the session never became {state!r}")

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
    wait_for(lambda: any("frame_conflicts" in h.problems for h in rig.health), timeout_s=15,
             what="the conflict on diagnostics")
    figures = rig.health[-1].figures
    assert (figures["frame_conflicts"], figures["rejected_frame_conflict"]) == (2, 2)


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
FILE_LIMIT_BYTES = 1_500_000  # the database's WAL reaches it about 4000 frames into the second walk
LIMITED = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
           f"resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_LIMIT_BYTES}, {FILE_LIMIT_BYTES})); "
           "from rig.cli import main; sys.exit(main(sys.argv[1:]))")


def test_a_full_disk_mid_session_loses_a_counted_announced_share_of_frames_and_nothing_else(broker, tmp_path):
    db, cfg = tmp_path / "gaitrig.sqlite", tmp_path / "coordinator.toml"
    cfg.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nrig_id = "test"\n'
                   f'[session]\nstart_after_s = 0.2\nend_timeout_s = 20\nfps = {FPS}\n'
                   f'[storage]\ndatabase = "{db}"\n')
    proc = subprocess.Popen([sys.executable, "-c", LIMITED, "coordinator", "--config", str(cfg)],
                            stderr=subprocess.PIPE, text=True)
    rig = FakeRig(broker.settings())
    try:
        rig.wait_state("idle")
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
    assert alive and proc.returncode == 0, err[-3000:]
    assert 0 < lost < 4 * n
    assert {v: second.frames[v] + second.frames_lost.get(v, 0) for v in VIEWS} == {v: n for v in VIEWS}
    assert not second.complete and "frames lost to a failed database write" in second.problem
    assert health.problems["disk_full"] == f"disk full: disk I/O error; {lost} frames lost"
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "database write failed (disk full" in errors[0], errors
    assert "Traceback" not in err
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        sessions = conn.execute("SELECT id, state, complete FROM sessions ORDER BY id").fetchall()
    assert sessions == [(first.session_id, "closed", 1), (second.session_id, "closed", 0)]
    assert stored(db, first.session_id) == {v: (120, 120) for v in VIEWS}
    assert Storage(db).report(first.session_id)[1] is None
    assert stored(db, second.session_id) == {v: (second.frames[v], second.frames[v]) for v in VIEWS}
