"""Erasing a patient removes their sessions everywhere: the coordinator's rows (every table
that names a session, in one transaction — the running coordinator does it), the review
video on a camera node that answers (over HTTP, at once) and on one that was off (from the
retained ``session/erased`` list, when it comes back), while another patient's sessions stay
whole. Real Mosquitto, real SQLite, real clip servers, the real coordinator and node daemons,
the real ``gaitrig patients erase`` command and the tablet pages over HTTP."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from test_web import PASSWORD, http, login_cookie, serve_app

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import (ErasedSessions, KeypointFrame, NodeInfo, PayloadError, SessionSummary, decode,
                              encode_keypoints)
from rig.clinic.accounts import Accounts
from rig.clinic.model import Condition, PatientFields
from rig.clinic.records import Records
from rig.clinic.store import ClinicStore
from rig.config import CameraSettings, CoordinatorConfig, NodeConfig, SessionSettings, StorageSettings, VideoSettings
from rig.coordinator.daemon import Coordinator
from rig.coordinator.storage import _SESSION_TABLES, Storage
from rig.node.cli import build
from rig.node.daemon import NodeDaemon
from rig.sim.broker import free_port
from rig.video.client import ClipClient
from rig.video.server import ClipServer
from rig.video.store import ClipMeta, ClipStore
from rig.web import create_app

T0 = 1.7e9
NAME = "Ingrid Erase-Test"


def small_session(storage: Storage, t: float) -> int:
    """A closed session with a row in every table that names a session but node_health (one
    row per view: the newest session's)."""
    sid = storage.open_session("belt at walking speed", t, 60.0, ["rear", "left"])
    for view in ("rear", "left"):
        for i in range(5):
            storage.add_frame(sid, view, i, encode_keypoints(KeypointFrame(sid, i, t + i / 60, None)))
        storage.node_end(sid, view, 5, 5, 0, 0, True)
    storage.add_belt_sample(sid, t, True, 1.2, 0.0, False)
    storage.add_counts(Counter({(sid, "rejected", "NodeEnd"): 1}))
    storage.save_report(sid, 1.2, None, "too few strides to analyse")
    storage.close_session(sid, t + 1, True)
    return sid


def film(store: ClipStore, sid: int) -> None:
    w = store.writer(ClipMeta(sid, store.view, 60.0, 8, 8, 8, 8, T0))
    w.add(0, b"\xff\xd8 not really a picture \xff\xd9")
    w.close()


def rows_of(db, sid: int) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        out = {t: conn.execute(f"SELECT count(*) FROM {t} WHERE session_id = ?", (sid,)).fetchone()[0]
               for t in _SESSION_TABLES}
        out["sessions"] = conn.execute("SELECT count(*) FROM sessions WHERE id = ?", (sid,)).fetchone()[0]
    return out


def kept(store: ClipStore) -> set[int]:
    return {c.session_id for c in store.stored()}


def wait_for(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_every_table_naming_a_session_is_erased():
    storage = Storage(":memory:")
    tables = [r[0] for r in storage.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    naming = {t for t in tables if "session_id" in {c[1] for c in storage.conn.execute(f"PRAGMA table_info({t})")}}
    assert naming - {"erased_sessions"} == set(_SESSION_TABLES)


def test_an_erased_sessions_id_is_never_given_to_a_new_session():
    storage = Storage(":memory:")
    a, b = small_session(storage, T0), small_session(storage, T0 + 10)
    assert storage.erase_sessions([b]) == 1
    storage.commit()
    assert storage.session(b) is None and storage.session(a) is not None
    assert small_session(storage, T0 + 20) == b + 1  # SQLite alone would have given b again


def test_the_newest_session_erased_the_list_shows_the_one_before(tmp_path):
    """Hidden before the LIMIT: with the newest session erased (its rows not yet deleted),
    the newest session is the one before — the next walk's pick counts from it, so an older
    unassigned session is not handed the pick."""
    from rig.web.database import ReadOnlyDatabase
    storage = Storage(tmp_path / "gaitrig.sqlite")
    a, b = small_session(storage, T0), small_session(storage, T0 + 10)
    storage.commit()
    db = ReadOnlyDatabase(storage.path, hidden=lambda: {b})
    assert [s.session.id for s in db.sessions(1)] == [a]
    assert [s.session.id for s in db.sessions_by_id([a, b])] == [a]
    storage.close()


@pytest.mark.parametrize("payload", [b'{"v":1,"t":1700000000,"session_ids":[0]}',
                                     b'{"v":1,"t":1700000000,"session_ids":[4294967296]}',
                                     b'{"v":1,"t":1700000000,"session_ids":["../1"]}',
                                     b'{"v":1,"t":1700000000,"session_ids":[1.5]}'])
def test_a_node_refuses_an_erased_list_with_ids_no_session_has(payload):
    with pytest.raises(PayloadError):
        decode(ErasedSessions, payload)


@pytest.mark.parametrize("path, code", [("/v1/clips/0", 404), ("/v1/clips/4294967296", 404), ("/v1/clips/x", 404),
                                        ("/v1/clips/..%2F7", 404), ("/v1/clips", 404), ("/v1/clips/7/frames", 404),
                                        ("/v1/clips/7", 200)])
def test_the_clip_server_deletes_only_a_valid_session_and_only_with_its_token(tmp_path, path, code):
    store = ClipStore(tmp_path, "rear")
    film(store, 7)
    server = ClipServer(store, "127.0.0.1", 0, token="s3cret")
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}{path}"
        assert _delete(url, token="wrong") == 401 and kept(store) == {7}
        assert _delete(url, token="s3cret") == code
        assert kept(store) == (set() if code == 200 else {7})
    finally:
        server.close()


def _delete(url: str, token: str) -> int:
    req = urllib.request.Request(url, method="DELETE", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_erasing_a_patient_removes_their_sessions_everywhere_and_a_node_that_was_off_catches_up(broker, tmp_path):
    db, clinic = tmp_path / "gaitrig.sqlite", tmp_path / "clinic.sqlite"
    storage = Storage(db)
    theirs, mine_a, mine_b = (small_session(storage, T0 + 100 * k) for k in range(3))  # mine_b: the newest
    # the rear node answers over HTTP; the left node is off (its clips URL: nobody listens)
    rear = ClipStore(tmp_path / "rear-node", "rear")
    left_dir = tmp_path / "left-node"
    left = ClipStore(left_dir / "video", "left")
    for store in (rear, left):
        for sid in (mine_a, mine_b, theirs):
            film(store, sid)
    server = ClipServer(rear, "127.0.0.1", 0)
    server.start()
    for view, url in (("rear", f"http://127.0.0.1:{server.port}"), ("left", f"http://127.0.0.1:{free_port()}")):
        storage.set_node_info(view, NodeInfo(view=view, width=8, height=8, camera="simulated", model="m",
                                             simulated=True, clips_url=url).model_dump_json())
    storage.set_node_health("left", T0, mine_a, 5, 0, 0)
    storage.set_node_health("rear", T0, theirs, 5, 0, 0)
    storage.commit()
    storage.close()
    before_theirs = rows_of(db, theirs)
    assert all(before_theirs.values()) and all(rows_of(db, mine_a).values()) and rows_of(db, mine_b)["keypoints"]

    store = ClinicStore(clinic)
    Accounts(store).add("carol", "clinician", PASSWORD)
    records = Records(store)
    patient = records.create(PatientFields.parse(NAME, "", "E-7", ""), "carol")
    other = records.create(PatientFields.parse("Other Patient", "", "E-8", ""), "carol")
    for sid, who in ((mine_a, patient), (mine_b, patient), (theirs, other)):
        records.assign(sid, who.id, Condition.parse("barefoot", ""), "carol")

    mqtt = broker.settings()
    summary = BusClient(mqtt, "test-summary").start()  # the retained summary the coordinator left of mine_b
    summary.send(topics.SESSION_SUMMARY, SessionSummary(
        session_id=mine_b, started_t=T0 + 200, ended_t=T0 + 201, reason="belt stopped", pulses_sent=5,
        frames={"rear": 5}, dropped={"rear": 0}, complete=True, findings=["pronated left rearfoot"])).wait_for_publish(5)
    summary.close()
    stop = threading.Event()
    coordinator = Coordinator(CoordinatorConfig(mqtt=mqtt, storage=StorageSettings(database=db),
                                                session=SessionSettings(views=["rear", "left"])))
    daemons = [threading.Thread(target=coordinator.run, args=(stop,), daemon=True)]
    daemons[0].start()
    web, web_thread, url = serve_app(create_app(db))
    node_stop = threading.Event()
    try:
        cookie = login_cookie(url, "carol")
        for sid in (mine_a, theirs):
            assert http(f"{url}/sessions/{sid}", cookie)[0] == 200

        done = subprocess.run([sys.executable, "-m", "rig.cli", "patients", "erase", str(patient.id), "--yes",
                               "--database", str(db)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            f"erased patient {patient.id} and 2 sessions",
            "recordings (keypoints, belt, reports) deleted by the coordinator",
            "camera node rear: video of 2 sessions deleted",
            f"camera node left: pending, it deletes the video when it reconnects (camera node left is offline: it "
            f"did not answer at http://127.0.0.1:{coordinator_port(db, 'left')} ([Errno 111] Connection refused))"]
        assert NAME not in done.stdout + done.stderr

        # the coordinator's database: nothing of the two sessions, the other patient's whole
        assert rows_of(db, mine_a) == rows_of(db, mine_b) == {t: 0 for t in (*_SESSION_TABLES, "sessions")}
        assert rows_of(db, theirs) == before_theirs
        # the pages: 404 for the erased sessions' report, review and data; the other one still there
        for path in ("/sessions/{}", "/sessions/{}/review", "/api/sessions/{}", "/api/sessions/{}/keypoints/rear"
                     "?from=0&to=4", "/api/sessions/{}/video/rear/info"):
            assert http(url + path.format(mine_a), cookie)[0] == 404, path
        assert http(f"{url}/sessions/{theirs}", cookie)[0] == 200
        assert http(f"{url}/sessions/{theirs}/review", cookie)[0] == 200
        # the node that answered: no file of the erased sessions, the other's video kept
        assert kept(rear) == {theirs}
        assert not rear.session_folder(mine_a).exists() and not rear.session_folder(mine_b).exists()
        assert ClipClient(f"http://127.0.0.1:{server.port}", "rear", 5).clip_info(theirs)["frames"] == 1
        # the audit log: the counts under the bare id, never the name
        actions = [e.action for e in store.audit_log(patient.id)]
        assert actions[:2] == ["erase patient: 2 sessions, video of 2 deleted now, nodes pending: left",
                               "erase patient (2 sessions)"]
        assert all(NAME not in e.action for e in store.audit_log(limit=10_000))
        assert kept(left) == {mine_a, mine_b, theirs}  # still off
        retained = broker_retained(broker, "gaitrig/test/session/erased")  # what a node gets on connecting
        assert retained is not None and decode(ErasedSessions, retained).session_ids == [mine_a, mine_b]
        assert broker_retained(broker, "gaitrig/test/session/summary", wait_s=1.0) is None  # its findings gone

        # the left node comes back: the retained list reaches it and it deletes what it kept
        cfg = NodeConfig(mqtt=mqtt, view="left", spool_dir=left_dir, camera=CameraSettings(
            backend="simulated", trigger_line=tmp_path / "no-trigger-line"), video=VideoSettings(port=0))
        node = NodeDaemon(cfg, build(cfg))
        threading.Thread(target=node.run, args=(node_stop,), daemon=True).start()
        wait_for(lambda: kept(left) == {theirs}, 20.0, "the returning node to delete the erased sessions' video")
        assert ClipStore(left_dir / "video", "left").reader(theirs) is not None
    finally:
        node_stop.set()
        stop.set()
        web.should_exit = True
        server.close()
        for t in daemons:
            t.join(10)
        web_thread.join(10)


def broker_retained(broker, topic: str, wait_s: float = 10.0) -> bytes | None:
    """The retained message on ``topic``, as a client subscribing now receives it; None if
    none comes within ``wait_s``."""
    got: list[bytes] = []
    client = BusClient(broker.settings(), "test-retained")
    client.subscribe(topic, lambda m: got.append(m.payload))
    client.start()
    deadline = time.monotonic() + wait_s
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    client.close()
    return got[0] if got else None


def coordinator_port(db, view: str) -> int:
    """The port in the clips URL the coordinator holds for ``view``."""
    import json
    with sqlite3.connect(db) as conn:
        payload = conn.execute("SELECT payload FROM node_info WHERE view = ?", (view,)).fetchone()[0]
    return int(json.loads(payload)["clips_url"].rsplit(":", 1)[1])
