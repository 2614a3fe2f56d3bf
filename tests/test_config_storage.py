"""Config validation messages, and the SQLite schema's migrations."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from rig.config import ConfigError, CoordinatorConfig, NodeConfig, load_config
from rig.coordinator.storage import MIGRATIONS, Storage, migrate


def write(tmp_path, text: str):
    p = tmp_path / "role.toml"
    p.write_text(text)
    return p


def test_broken_config_names_file_key_and_problem(tmp_path):
    p = write(tmp_path, '[session]\nfps = -3\nviews = ["left", "left"]\n[storage]\ndatabse = "x"\n')
    with pytest.raises(ConfigError) as e:
        load_config(CoordinatorConfig, p)
    msg = str(e.value)
    assert f"{p}: session.fps: Input should be greater than 0" in msg
    assert f"{p}: session.views: Value error, must list each view at most once" in msg
    assert f"{p}: storage.databse: unknown key" in msg


def test_analysis_calibration_path_is_checked(tmp_path):
    assert str(CoordinatorConfig().analysis.calibration) == "/var/lib/gaitrig/calibration.json"
    p = write(tmp_path, '[analysis]\ncalibration = "/var/lib/gaitrig/cameras.toml"\ncameras = "x"\n')
    with pytest.raises(ConfigError) as e:
        load_config(CoordinatorConfig, p)
    msg = str(e.value)
    assert (f"{p}: analysis.calibration: Value error, must be the .json file `gaitrig calibrate solve` writes "
            "(default /var/lib/gaitrig/calibration.json), got '/var/lib/gaitrig/cameras.toml'") in msg
    assert f"{p}: analysis.cameras: unknown key" in msg
    with pytest.raises(ConfigError, match=r"analysis.calibration: Value error, must be the .json file .* got '\.'"):
        load_config(CoordinatorConfig, write(tmp_path, '[analysis]\ncalibration = ""\n'))
    ok = load_config(CoordinatorConfig, write(tmp_path, '[analysis]\ncalibration = "/srv/rig/calibration.json"\n'))
    assert str(ok.analysis.calibration) == "/srv/rig/calibration.json"


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"role.toml: not valid TOML"):
        load_config(NodeConfig, write(tmp_path, "view = \n"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(NodeConfig, tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match=r"view: Field required"):
        load_config(NodeConfig, write(tmp_path, "[camera]\nbackend = 'simulated'\n"))


def test_daemon_stops_at_start_with_the_message(tmp_path):
    p = write(tmp_path, '[camera]\nbackend = "webcam"\n')
    r = subprocess.run([sys.executable, "-m", "rig.cli", "node", "--config", str(p), "--view", "left"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert f"{p}: camera.backend: Input should be 'picamera2', 'video' or 'simulated'" in r.stderr
    assert "Traceback" not in r.stderr


def test_migrations_apply_once_and_refuse_a_newer_schema(tmp_path):
    db = tmp_path / "g.sqlite"
    s = Storage(db)
    sid = s.open_session("manual start", 1.0, 60.0, ["left"])
    s.close()
    s = Storage(db)  # reopening applies nothing twice and keeps the data
    assert s.session(sid).start_reason == "manual start"
    s.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this gaitrig"):
        migrate(conn)


def test_duplicate_frames_are_stored_once_and_a_different_second_frame_does_not_win(tmp_path):
    s = Storage(tmp_path / "g.sqlite")
    sid = s.open_session("belt running", 1.0, 60.0, ["left", "right"])
    assert [s.add_frame(sid, "left", 0, b"a"), s.add_frame(sid, "left", 1, b"b")] == ["stored", "stored"]
    assert s.add_frame(sid, "left", 1, b"b") == "duplicate"
    assert s.add_frame(sid, "left", 1, b"forged") == "conflict"
    assert {n.view: n.frames_received for n in s.nodes(sid)} == {"left": 2, "right": 0}
    assert list(s.frames(sid, "left")) == [b"a", b"b"]


def test_missing_spans_name_every_run_of_absent_trigger_indices():
    s = Storage(":memory:")
    sid = s.open_session("test", 0.0, 60.0, ["left", "right"])
    for k in [*range(2, 5), 7, *range(9, 12)]:
        s.add_frame(sid, "left", k, b"x")
    assert s.missing_spans(sid, "left", 15) == [(0, 2), (5, 7), (8, 9), (12, 15)]
    assert s.missing_spans(sid, "left", 12) == [(0, 2), (5, 7), (8, 9)]
    assert s.missing_spans(sid, "right", 3) == [(0, 3)]
