"""Diagnostics logic without a broker: machine figures from fake /proc and /sys, problem
rules and their edges, settings validation and redaction, the status table's order, and
the still image."""
from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np
import pytest

import rig.ops
from firmware_bridge.diagnostics import bridge_problems
from rig.bus.payloads import DiagHealth, Presence
from rig.config import CoordinatorConfig, NodeConfig
from rig.coordinator.diagnostics import coordinator_problems
from rig.node.diagnostics import node_problems
from rig.ops import health as h
from rig.ops.diag import DiagError, apply_setting, redact, validated_setting
from rig.ops.diag_cli import Row, Seen, key_figures, render, rows
from rig.ops.still import encode_jpeg, render_skeleton


def test_cpu_temperature_prefers_the_cpu_zone_and_is_null_without_one(tmp_path):
    for i, (kind, milli) in enumerate([("acpitz", "27800"), ("cpu-thermal", "61234")]):
        zone = tmp_path / f"thermal_zone{i}"
        zone.mkdir()
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    assert h.cpu_temp_c(tmp_path) == 61.2
    assert h.cpu_temp_c(tmp_path / "absent") is None


def test_memory_figures_are_read_in_mb(tmp_path):
    (tmp_path / "status").write_text("Name:\tpython\nVmRSS:\t  51200 kB\n")
    (tmp_path / "meminfo").write_text("MemTotal: 4000000 kB\nMemAvailable:  2048000 kB\n")
    assert h.mem_rss_mb(tmp_path / "status") == 50.0
    assert h.mem_available_mb(tmp_path / "meminfo") == 2000.0
    assert h.mem_rss_mb(tmp_path / "nothing") is None


def test_problems_raise_and_clear_once_each():
    tracker = h.ProblemTracker()
    low = h.common_problems({"disk_free_mb": 120.0, "cpu_temp_c": None, "mem_available_mb": 900.0})
    assert list(low) == ["disk_low"]
    assert tracker.update(low) == [("disk_low", True, low["disk_low"])]
    assert tracker.update(low) == []  # still low: no second event
    (kind, raised, detail), = tracker.update({})
    assert (kind, raised) == ("disk_low", False) and "cleared" in detail


def test_node_and_bridge_problem_rules():
    idle = {"train_running": False, "last_frame_age_s": None, "inference_backlog": 0, "inference_backlog_mb": 0.0,
            "spool_mb": 0.0,
            "frames_lost": 0, "camera_error": None}
    assert node_problems(idle, 1000.0, 200.0) == {}
    bad = {**idle, "train_running": True, "last_frame_age_s": 3.5, "inference_backlog": 200,
           "inference_backlog_mb": 950.0, "spool_mb": 150.0,
           "frames_lost": 2, "camera_error": "picamera2: camera 0 failed to open"}
    assert set(node_problems(bad, 1000.0, 200.0)) == {"camera_lost", "inference_backlog", "spool_filling",
                                                    "frames_lost", "camera_failed"}
    assert set(bridge_problems({"serial_connected": True, "controller_silent": True, "serial_port": "p"})) == {
        "controller_silent"}
    assert set(bridge_problems({"serial_connected": False, "controller_silent": True, "serial_port": "p"})) == {
        "serial_down"}


def test_coordinator_problem_rules():
    calm = {"inbox_backlog": 2000, "db_problem": None, "frames_lost_db": 0, "frame_conflicts": 0,
            "last_session_id": "s1"}
    assert coordinator_problems(calm) == {}
    full = {**calm, "inbox_backlog": 2001, "db_problem": "disk full: 12 MB free", "frames_lost_db": 40,
            "frame_conflicts": 3}
    problems = coordinator_problems(full)
    assert set(problems) == {"inbox_backlog", "disk_full", "frame_conflicts"}
    assert problems["disk_full"] == "disk full: 12 MB free; 40 frames lost"
    assert set(coordinator_problems({**calm, "db_problem": "database is locked"})) == {"database_error"}


def test_ops_layer_imports_no_daemon():
    """rig.ops is the lower layer: the daemons hand it their hooks, it never reaches up into
    them (not even under TYPE_CHECKING)."""
    daemons = ("rig.node", "rig.coordinator", "firmware_bridge")
    offenders = []
    for path in sorted(Path(rig.ops.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names
                          if any(n == d or n.startswith(d + ".") for d in daemons)]
    assert len(list(Path(rig.ops.__file__).parent.glob("*.py"))) >= 5  # the walk saw the package
    assert offenders == []


def test_percentiles_of_latencies():
    assert h.percentile_ms([], 95) is None
    assert h.percentile_ms(range(1, 101), 50) == 50
    assert h.percentile_ms(range(1, 101), 95) == 95


def test_settings_are_validated_by_the_config_model_and_applied_to_the_live_object():
    config = CoordinatorConfig()
    assert validated_setting(config, "session.fps", "90") == 90.0
    with pytest.raises(DiagError, match="session.fps: Input should be greater than 0"):
        validated_setting(config, "session.fps", "-1")
    with pytest.raises(DiagError, match="unknown setting"):
        validated_setting(config, "session.nope", "1")
    session = config.session
    apply_setting(config, "session.fps", 90.0)
    assert session.fps == 90.0  # the object the session machine holds


def test_config_dump_hides_secrets():
    config = NodeConfig(view="left", mqtt={"username": "node-left", "password_file": "/etc/gaitrig/mqtt.password"})
    out = redact(config.model_dump(mode="json"))
    assert out["mqtt"]["password_file"] == "<redacted>" and out["mqtt"]["username"] == "node-left"


def _health(name: str, t: float, problems: dict | None = None) -> DiagHealth:
    return DiagHealth(daemon=name, t=t, period_s=5.0, uptime_s=1.0, cpu_load_1m=0.1, cpu_temp_c=None,
                      mem_rss_mb=50.0, mem_available_mb=900.0, disk_free_mb=9000.0, broker_reconnects=0,
                      rejected_payloads=0, commands_refused=0, figures={"frames_out": 7}, problems=problems or {})


def _seen(name: str, online: bool, t: float, problems: dict | None = None) -> Seen:
    return Seen(Presence(daemon=name, online=online, seq=1, t=t), _health(name, t, problems))


def test_status_lists_problems_first_and_skips_tools_without_health():
    now = 1_700_000_000.0
    seen = {"node-left": _seen("node-left", True, now - 1), "node-rear": _seen("node-rear", False, now - 30),
            "bridge": _seen("bridge", True, now - 1, {"controller_silent": "no heartbeat"}),
            "coordinator": _seen("coordinator", True, now - 60),  # online but silent for 12 periods
            "demo-watch": Seen(Presence(daemon="demo-watch", online=True, seq=1, t=now))}
    table = rows(seen, now, known={"node-left", "node-rear", "bridge", "coordinator"})
    assert [(r.name, r.state) for r in table] == [("node-rear", "down"), ("coordinator", "stale"),
                                                  ("bridge", "up"), ("node-left", "up")]
    text = render(table)
    assert "frames_out=7" in text and "bridge controller_silent: no heartbeat" in text


def test_key_figures_expand_per_view_counts():
    row = Row("coordinator", "up", 1.0, {}, {"session_state": "idle", "frames_received_left": 3,
                                              "frames_received_rear": 4, "other": 1})
    assert key_figures(row) == "session_state=idle frames_received_left=3 frames_received_rear=4"


def test_still_of_a_skeleton_is_a_jpeg_of_the_camera_size():
    lm = np.zeros((33, 4))
    lm[:, 0], lm[:, 1], lm[:, 3] = np.linspace(100, 300, 33), np.linspace(50, 400, 33), 1.0
    image = cv2.imdecode(np.frombuffer(encode_jpeg(render_skeleton(lm, 640, 480)), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (480, 640, 3) and image.max() > 150  # bones drawn on the dark frame
    empty = render_skeleton(None, 320, 240)
    assert empty.shape == (240, 320, 3)
