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
