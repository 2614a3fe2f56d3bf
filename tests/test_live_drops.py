"""The live page shows each camera's drops as the walk goes on: a real rig (Mosquitto, the
simulated treadmill and bridge, the coordinator, four simulated camera nodes, the rear one
missing some trigger pulses) publishes node health, the coordinator keeps each node's
session drops, and the tablet's page — real headless Chromium on the SSE stream — shows the
rear camera's count rising without a reload while the other cameras show none."""
from __future__ import annotations

import re
import time

from test_rig import RunningRig
from test_web import PASSWORD, Tablet, serve_app

from rig.bus.payloads import DiagHealth
from rig.clinic.accounts import Accounts
from rig.clinic.store import ClinicStore
from rig.coordinator.intake import node_health
from rig.web.app import create_app

MISS = 0.04  # the rear camera misses ~4 % of the pulses: ~2.4 a second at 60 Hz


def _count(page, view: str) -> int | None:
    text = page.inner_text(f"[data-cell='drops.{view}']")
    return int(text) if text.isdigit() else None


def _wait(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the page never showed it"
        time.sleep(0.2)


def test_the_live_page_shows_a_cameras_drops_rising_without_reloading(broker, tmp_path, browser, screenshot_dir):
    rig = RunningRig(broker, tmp_path, miss_fraction={"rear": MISS}, health_period_s=1.0)
    Accounts(ClinicStore(rig.db.with_name("clinic.sqlite"))).add("carol", "clinician", PASSWORD)
    server, thread, url = serve_app(create_app(rig.db))
    tablet = Tablet(browser, url).login("carol")
    try:
        page = tablet.page
        page.goto(url + "/live")
        page.evaluate("window.__samePage = true")
        rig.sim.belt_start(1.2, ramp_s=0.2)
        rig.wait_state("recording")
        page.wait_for_selector("#live-session", timeout=30_000)
        _wait(lambda: (_count(page, "rear") or 0) > 0, 20)
        first = _count(page, "rear")
        _wait(lambda: _count(page, "rear") > first, 20)  # the next health reports: more missed, shown in place
        assert page.evaluate("window.__samePage") is True
        assert [_count(page, v) for v in ("left", "right", "front")] == [0, 0, 0]
        assert page.get_attribute("[data-view=left] .drops", "class") == "drops"
        assert "warn" in page.get_attribute("[data-view=rear] .drops", "class")
        page.screenshot(path=str(screenshot_dir / "live-drops-800x1280.png"))
        shown = _count(page, "rear")
        rig.sim.belt_stop()
        summary = rig.summaries.get(timeout=120)  # the whole rig shares this process: a loaded machine lags
        assert summary.dropped["rear"] >= shown > 0  # what the page showed live, the session's end confirms
        assert {v: summary.dropped[v] for v in ("left", "right", "front")} == {"left": 0, "right": 0, "front": 0}
        page.wait_for_url(re.compile(r"/sessions/\d+$"), timeout=90_000)
    finally:
        tablet.close()
        server.should_exit = True
        thread.join(10)
        rig.close()


def _health(figures: dict) -> DiagHealth:
    return DiagHealth(daemon="node-rear", t=1.7e9, period_s=5.0, uptime_s=1.0, cpu_load_1m=None, cpu_temp_c=None,
                      mem_rss_mb=None, mem_available_mb=None, disk_free_mb=None, broker_reconnects=0,
                      rejected_payloads=0, commands_refused=0, figures=figures)


def test_node_health_keeps_a_camera_nodes_session_counts_only():
    h = node_health("node-rear", _health({"session_id": 7, "session_frames_out": 600,
                                          "session_missed_triggers": 12, "session_dropped": 3}), ["rear", "left"])
    assert (h.view, h.t, h.session_id, h.frames_out, h.missed, h.dropped) == ("rear", 1.7e9, 7, 600, 12, 3)
    assert node_health("coordinator", _health({}), ["rear"]) is None
    assert node_health("node-front", _health({}), ["rear"]) is None  # not a view of this rig
    h = node_health("node-rear", _health({"session_id": None, "session_missed_triggers": -1,
                                          "session_dropped": 2.5}), ["rear"])
    assert (h.session_id, h.missed, h.dropped) == (None, None, None)  # never guessed
    # between trains the node has no session counts: the last ones of the session stay
    assert node_health("node-rear", _health({"session_id": 7, "session_missed_triggers": None,
                                             "session_dropped": 0}), ["rear"]) is None
