"""The report's 3D section from calibrated cameras, and the 2D fallback when the rig is
not calibrated (the report says which it shows)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rig.gait import analyze_tracks
from rig.sim.walker import SimulatedWalker, WalkerParams
from rig.threed.camera import save_cameras
from rig.threed.validation import rig_cameras


@pytest.fixture(scope="module")
def cams():
    cams = rig_cameras()
    for c in cams.values():
        c.dist = np.zeros(5)  # the walker's tracks come from ideal pinhole cameras
    return cams


def session(**params):
    w = SimulatedWalker(WalkerParams(noise_px=1.5, **params), fps=60)
    return {v: w.track(v, 20.0) for v in ("left", "right", "rear", "front")}


def test_report_shows_3d_when_calibrated_and_an_orthotic_sized_change(cams):
    before = analyze_tracks(session(rearfoot_eversion_left_deg=12.0), 1.2, cams).to_dict()
    after = analyze_tracks(session(rearfoot_eversion_left_deg=10.0), 1.2, cams).to_dict()
    k = before["kinematics"]
    assert k["source"] == "3d" and k["3d"]["views"] == ["front", "left", "rear", "right"]
    assert "kinematics.3d" not in before["unavailable"]
    ev_b = k["3d"]["summary"]["rearfoot_eversion_3d_deg"]
    ev_a = after["kinematics"]["3d"]["summary"]["rearfoot_eversion_3d_deg"]
    assert ev_b["left"]["n"] >= 15
    # the walker's 2 deg change (set as a rear-view image angle) is seen in 3D within 0.5 deg
    assert ev_b["left"]["mean"] - ev_a["left"]["mean"] == pytest.approx(2.0, abs=0.5)
    assert abs(ev_b["right"]["mean"] - ev_a["right"]["mean"]) < 0.3
    assert ev_b["left"]["ci"][1] - ev_b["left"]["ci"][0] < 1.0  # 95 % CI of 17 strides: narrower than 2 deg
    sm = k["3d"]["summary"]
    assert 0.05 < sm["step_width_3d_m"]["mean"] < 0.25
    assert 0 < sm["foot_progression_3d_deg"]["left"]["mean"] < 12  # the walker toes out 6 deg
    knee = k["3d"]["curves"]["knee_flexion_deg"]["left"]["mean"]
    assert 50 < max(knee) < 75  # peak swing knee flexion of normal walking
    assert k["3d"]["quality"]["median_reprojection_px"] < 2.5


def test_findings_and_step_length_come_from_3d_when_calibrated(cams):
    """The frontal findings say which they use; the spatiotemporal table gains step length
    from the feet's 3D positions plus the belt, and step width, per side."""
    tracks = session(rearfoot_eversion_left_deg=12.0)
    truth = SimulatedWalker(WalkerParams(noise_px=1.5, rearfoot_eversion_left_deg=12.0), fps=60).truth(0.0, 20.0)
    d3 = analyze_tracks(tracks, 1.2, cams).to_dict()
    d2 = analyze_tracks(tracks, 1.2).to_dict()
    assert d3["findings_source"] == "3d" and d2["findings_source"] == "2d"
    f3 = [f for f in d3["findings"] if f["code"] == "excessive_rearfoot_eversion"]
    f2 = [f for f in d2["findings"] if f["code"] == "excessive_rearfoot_eversion"]
    assert [f["side"] for f in f3] == ["left"] and f3[0]["source"] == "3d" and ", 3D;" in f3[0]["text"]
    assert f3[0]["value"] == pytest.approx(d3["kinematics"]["3d"]["summary"]["rearfoot_eversion_3d_deg"]["left"]["mean"])
    assert [f["side"] for f in f2] == ["left"] and "2D projection" in f2[0]["text"]
    sp = d3["spatiotemporal"]
    for side in ("left", "right"):
        assert sp["step_length_3d_m"][side] == pytest.approx(truth.step_length_m[side], abs=0.02)
        lo, hi = sp["step_length_3d_ci95_m"][side]
        assert lo < sp["step_length_3d_m"][side] < hi and hi - lo < 0.05
        assert 0.08 < sp["step_width_3d_m"][side] < 0.16  # heels ~0.12 m apart
    assert "step_length_3d_m" not in d2["spatiotemporal"]


def test_report_falls_back_to_2d_and_says_why(cams):
    tracks = session()
    d = analyze_tracks(tracks, 1.2).to_dict()
    assert d["kinematics"]["source"] == "2d" and d["kinematics"]["3d"] is None
    assert "not calibrated" in d["unavailable"]["kinematics.3d"]
    one = analyze_tracks(tracks, 1.2, {"left": cams["left"]}).to_dict()
    assert one["kinematics"]["source"] == "2d"
    assert "two calibrated views" in one["unavailable"]["kinematics.3d"]


def test_cli_analyze_with_cameras(cams, tmp_path):
    w = SimulatedWalker(WalkerParams(), fps=60)
    paths = w.write(tmp_path, 12.0)
    save_cameras(tmp_path / "cameras.json", cams)
    run = lambda *a: subprocess.run([sys.executable, "-m", "rig.cli", "analyze", *map(str, paths.values()),  # noqa: E731
                                     "--belt-speed", "1.2", *a], capture_output=True, text=True, timeout=300)
    r = run("--cameras", str(tmp_path / "cameras.json"))
    assert r.returncode == 0, r.stderr
    assert "angles: 3D from the calibrated cameras" in r.stdout
    r = run()
    assert "angles: 2D projections (rig not calibrated" in r.stdout
    (tmp_path / "bad.json").write_text("{}")
    r = run("--cameras", str(tmp_path / "bad.json"))
    assert r.returncode == 2 and "not a gaitrig-cameras/1 file" in r.stderr and "Traceback" not in r.stderr


def test_report_page_shows_the_3d_step_rows_only_when_the_report_has_them():
    from rig.web.report_view import report_view
    sp = {"step_length_m": {"left": 0.6, "right": 0.61}}
    plain = [r.measure.key for r in report_view({"spatiotemporal": sp}).rows]
    assert "step_length_3d_m" not in plain and "step_length_m" in plain
    sp3 = {**sp, "step_length_3d_m": {"left": 0.62, "right": 0.6}, "step_length_3d_ci95_m": {"left": [0.6, 0.64], "right": None},
           "step_width_3d_m": {"left": 0.12, "right": 0.13}}
    rows = {r.measure.key: r for r in report_view({"spatiotemporal": sp3}).rows}
    assert rows["step_length_3d_m"].sides["left"].value == 0.62 and rows["step_length_3d_m"].sides["left"].ci == [0.6, 0.64]
    assert rows["step_width_3d_m"].sides["right"].value == 0.13
    assert rows["step_length_3d_m"].measure.label.startswith("Step length, 3D")


# --- the coordinator's own reports (and so the tablet's) in 3D when the rig is calibrated ---------
def stored_unanalysed_walk(db, walk_s: float = 10.0) -> int:
    """A closed session as the coordinator stores it, left unanalysed (as after a crash at
    close), so the coordinator analyses it as soon as it starts."""
    from rig.bus.payloads import KeypointFrame, NodeInfo, encode_keypoints
    from rig.coordinator.storage import Storage
    fps, views = 60.0, ["left", "right", "rear", "front"]
    walker = SimulatedWalker(WalkerParams(noise_px=1.5, rearfoot_eversion_left_deg=12.0), fps=fps, seed=4)
    n = walker.n_frames(walk_s)
    storage = Storage(db)
    sid = storage.open_session("belt running", 1.7e9, fps, views)
    first = 1.7e9 + 0.5
    storage.set_train(sid, first, n)
    for view, lm in walker.render(np.arange(n), views).items():
        h = walker.header(view)
        storage.set_node_info(view, NodeInfo(view=view, width=h.width, height=h.height, facing=h.facing,
                                             camera="simulated", model="walker", simulated=True).model_dump_json())
        for i in range(n):
            storage.add_frame(sid, view, i, encode_keypoints(KeypointFrame(sid, i, first + i / fps, lm[i], True)))
    storage.add_belt_sample(sid, first, True, 1.2, 0.0, False)
    storage.close_session(sid, first + walk_s, True)
    storage.close()
    return sid


@pytest.mark.parametrize("calibration", ["calibrated", "no file", "broken file"])
def test_coordinator_reports_in_3d_when_the_rig_is_calibrated(broker, cams, tmp_path, caplog, calibration):
    """The coordinator reads analysis.calibration at start: with it the stored report has
    the 3D section and its findings are judged in 3D, and the tablet's report page says
    "3D"; without it, or with a file it cannot use (logged, naming the file and the fault),
    it still analyses, in 2D, and the page says "2D"."""
    import json
    import threading
    import urllib.request

    from test_reliability_coordinator import wait_for
    from test_web import PASSWORD, login_cookie, serve_app

    from rig.clinic.accounts import Accounts
    from rig.clinic.store import ClinicStore
    from rig.config import AnalysisSettings, CoordinatorConfig, SessionSettings, StorageSettings
    from rig.coordinator.daemon import Coordinator
    from rig.coordinator.storage import Storage
    from rig.web import create_app
    from rig.web.report_view import report_view

    db, cal = tmp_path / "gaitrig.sqlite", tmp_path / "calibration.json"
    sid = stored_unanalysed_walk(db)
    if calibration == "calibrated":
        save_cameras(cal, cams)
    elif calibration == "broken file":
        cal.write_text('{"format": "gaitrig-cameras/1", "cameras": [{"name": "left", "fx": 1000}]}')
    config = CoordinatorConfig(mqtt=broker.settings(), storage=StorageSettings(database=db),
                               analysis=AnalysisSettings(calibration=cal), session=SessionSettings(fps=60.0))
    coordinator, stop = Coordinator(config), threading.Event()
    caplog.set_level("INFO", logger="rig.coordinator.analysis")
    thread = threading.Thread(target=coordinator.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: Storage(db).report(sid) is not None, timeout_s=120, what="the session's analysis")
        report_json, error = Storage(db).report(sid)
        assert error is None and thread.is_alive()  # a broken calibration does not stop the daemon
    finally:
        stop.set()
        thread.join(15)
    report = json.loads(report_json)
    logged = [r.getMessage() for r in caplog.records if r.name == "rig.coordinator.analysis"]
    if calibration == "calibrated":
        assert report["findings_source"] == "3d" and report["kinematics"]["source"] == "3d"
        assert report["kinematics"]["3d"]["views"] == ["front", "left", "rear", "right"]
        assert "step_length_3d_m" in report["spatiotemporal"]
        assert [f["source"] for f in report["findings"] if f["code"] == "excessive_rearfoot_eversion"] == ["3d"]
        assert any(f"rig calibration {cal} (front, left, rear, right): reports are 3D" in m for m in logged)
    else:
        assert report["findings_source"] == "2d" and report["kinematics"]["3d"] is None
        assert "step_length_3d_m" not in report["spatiotemporal"]
        expected = (f"no rig calibration at {cal}" if calibration == "no file" else
                    f"rig calibration unusable, reports are 2D until it is fixed: {cal}: camera entry 'left'")
        assert sum(expected in m for m in logged) == 1, logged

    Accounts(ClinicStore(db.with_name("clinic.sqlite"))).add("carol", "clinician", PASSWORD)
    server, web, url = serve_app(create_app(db))
    try:
        req = urllib.request.Request(f"{url}/sessions/{sid}", headers={"Cookie": login_cookie(url, "carol")})
        page = urllib.request.urlopen(req, timeout=10).read().decode()
    finally:
        server.should_exit = True
        web.join(10)
    shown = "3D" if calibration == "calibrated" else "2D"
    assert f'id="findings-source" data-source="{shown}">{shown}</span>' in page
    assert report_view(report).findings_source_text in page


def test_a_3d_angle_no_human_joint_makes_is_withheld_not_reported(cams):
    """The left heel landmark 12 cm out to the side in every view (consistently, so the
    triangulation keeps it): a rearfoot angle past what a human rearfoot does (-30..30 deg)
    is a measurement problem. The 3D curve and per-stride value are withheld with the
    reason, listed under quality.implausible_angles, no finding is drawn from them; the
    right side stays."""
    w = SimulatedWalker(WalkerParams(noise_px=1.5), fps=60)
    tracks = {v: w.track(v, 20.0) for v in ("left", "right", "rear", "front")}
    world = w.world(tracks["left"].index).copy()
    world[:, 29, 1] += 0.12  # landmark 29: left heel; +y: the walker's left
    for v, tr in tracks.items():
        tr.lm[:, 29, :2] = cams[v].project(world)[:, 29]
    d = analyze_tracks(tracks, 1.2, cams).to_dict()
    k3 = d["kinematics"]["3d"]
    assert "kinematics.3d.rearfoot_eversion_3d_deg.left" in d["quality"]["implausible_angles"]
    assert "kinematics.3d.rearfoot_eversion_deg.left" in d["quality"]["implausible_angles"]
    assert "outside what a human joint does" in d["unavailable"]["kinematics.3d.rearfoot_eversion_3d_deg.left"]
    assert k3["summary"]["rearfoot_eversion_3d_deg"]["left"]["mean"] is None
    assert k3["curves"]["rearfoot_eversion_deg"]["left"]["mean"] is None
    assert abs(k3["summary"]["rearfoot_eversion_3d_deg"]["right"]["mean"]) < 10
    assert not [f for f in d["findings"] if f["code"] == "excessive_rearfoot_eversion" and f.get("side") == "left"]
