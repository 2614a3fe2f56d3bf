"""The tablet pages against their real counterparts: a coordinator database built by the
real storage and gait analysis from the simulated walker's keypoints (encoded as the nodes
send them), served by uvicorn, read by real headless Chromium (Playwright driving Debian's
chromium) logged in as a clinician — and `gaitrig web` as systemd runs it (READY, watchdog
pings, STOPPING). The clinic's workflow (log-ins, patients, downloads) is in
test_web_clinic.py, which reuses the helpers here."""
from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
import uvicorn
from test_ops_notify import Listener

from rig.clinic.accounts import Accounts
from rig.clinic.store import ClinicStore
from rig.coordinator.analysis import analyze_session
from rig.coordinator.storage import Storage
from rig.sim.broker import free_port
from rig.sim import stored_walk
from rig.sim.walker import WalkerParams
from rig.gait import compare_reports
from rig.web import create_app
from rig.web.comparison import MEASURE_LABELS
from rig.web.database import ReadOnlyDatabase
from rig.web.formatting import number

VIEWS = ["left", "right", "rear", "front"]
FPS = 60.0
WALK_S = 20.0
WALKING_MIN_M_S = 0.3
T0 = 1_750_000_000.0
PASSWORD = "walk the line 42"
USERS = {"carol": "clinician", "adam": "admin", "tess": "technician"}


# --- a coordinator database, recorded the way the coordinator records --------------------------
def record_walk(storage: Storage, params: WalkerParams, seed: int, started_t: float) -> int:
    """One closed, analysed session of WALK_S seconds (rig.sim.stored_walk)."""
    return stored_walk.record_walk(storage, params, seed, started_t, WALK_S, FPS, VIEWS, WALKING_MIN_M_S)


@dataclass
class Rig:
    db_path: Path
    storage: Storage  # stays open, as the running coordinator's would
    normal: int
    pronated: int
    failed: int
    url: str = ""
    reports: dict[int, dict] = field(default_factory=dict)
    app: object = None

    @property
    def clinic_path(self) -> Path:
        return self.db_path.with_name("clinic.sqlite")  # the default: beside the coordinator's


def serve_app(app) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("coordinator") / "gaitrig.sqlite"
    accounts = Accounts(ClinicStore(db_path.with_name("clinic.sqlite")))
    for name, role in USERS.items():
        accounts.add(name, role, PASSWORD)
    storage = Storage(db_path)
    normal = record_walk(storage, WalkerParams(noise_px=2.0), seed=1, started_t=T0)
    pronated = record_walk(storage, WalkerParams(noise_px=2.0, rearfoot_eversion_left_deg=12.0), seed=2,
                           started_t=T0 + 3600)
    failed = storage.open_session("belt at walking speed", T0 + 7200, FPS, VIEWS)  # the train never started
    storage.mark_closing(failed, "belt stopped")
    storage.close_session(failed, T0 + 7203, False)
    analyze_session(storage, failed, WALKING_MIN_M_S)
    storage.commit()
    r = Rig(db_path, storage, normal, pronated, failed)
    for sid in (normal, pronated):
        r.reports[sid] = json.loads(storage.report(sid)[0])

    r.app = create_app(db_path)
    server, thread, r.url = serve_app(r.app)
    yield r
    server.should_exit = True
    thread.join(10)
    storage.close()


# --- a real browser, logged in -----------------------------------------------------------------
class Tablet:
    """One browser context (its own cookies) at a portrait tablet's size."""

    def __init__(self, browser, url: str, width: int = 800, height: int = 1280):
        self.context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        self.page = self.context.new_page()
        self.url = url

    def login(self, username: str, password: str = PASSWORD) -> "Tablet":
        self.page.goto(self.url + "/login")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        with self.page.expect_navigation():
            self.page.click("#login-button")
        return self

    def dom(self, path: str) -> "Element":
        self.page.goto(self.url + path)
        return Dom.parse(self.page.content())

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def clinician(rig, browser):
    t = Tablet(browser, rig.url).login("carol")
    yield t
    t.close()


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parts: list[str] = field(default_factory=list)
    children: list["Element"] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())

    def find_all(self, tag: str | None = None, **attrs: str) -> list["Element"]:
        out = []
        for c in self.children:
            if (tag is None or c.tag == tag) and all(c.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                out.append(c)
            out += c.find_all(tag, **attrs)
        return out

    def find(self, tag: str | None = None, **attrs: str) -> "Element":
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}> elements"
        return found[0]


class Dom(HTMLParser):
    """The DOM Chromium dumps, as a tree with each element's text."""

    VOID = {"br", "hr", "img", "input", "link", "meta", "source", "col", "area", "base", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self.stack = [self.root]

    @classmethod
    def parse(cls, html: str) -> Element:
        d = cls()
        d.feed(html)
        d.close()
        return d.root

    def handle_starttag(self, tag, attrs):
        el = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(el)
        if tag not in self.VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        for k in range(len(self.stack) - 1, 0, -1):
            if self.stack[k].tag == tag:
                del self.stack[k:]
                return

    def handle_data(self, data):
        for el in self.stack:
            el.parts.append(data)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http(url: str, cookie: str | None = None, data: dict | None = None, method: str | None = None,
         follow: bool = True) -> tuple[int, str]:
    """One request as a script would make it: optional log-in cookie and url-encoded form."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method=method, headers={"Cookie": cookie} if cookie else {})
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def login_cookie(url: str, username: str, password: str = PASSWORD) -> str:
    """Log in as the form does (nonce cookie + CSRF from the page) and return the session cookie."""
    with urllib.request.urlopen(url + "/login", timeout=10) as r:
        nonce = r.headers["Set-Cookie"].split(";")[0]
        csrf = LoginFormToken.find(r.read().decode())
    req = urllib.request.Request(url + "/login", data=urllib.parse.urlencode(
        {"csrf": csrf, "username": username, "password": password}).encode(), headers={"Cookie": nonce})
    try:
        urllib.request.build_opener(_NoRedirect).open(req, timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 303, e.read().decode()
        return e.headers["Set-Cookie"].split(";")[0]
    raise AssertionError("logging in did not redirect")


class LoginFormToken:
    @staticmethod
    def find(html: str) -> str:
        return Dom.parse(html).find("input", name="csrf").attrs["value"]


@pytest.fixture(scope="module")
def cookie(rig) -> str:
    return login_cookie(rig.url, "carol")


# --- what a clinician sees ----------------------------------------------------------------------
def test_sessions_list_shows_every_session_newest_first_with_cadence_and_findings(rig, clinician):
    dom = clinician.dom("/")
    ours = {rig.failed, rig.pronated, rig.normal}
    ids = [int(tr.attrs["data-session"]) for tr in dom.find("table", id="sessions").find_all("tr")
           if "data-session" in tr.attrs]
    assert [i for i in ids if i in ours] == [rig.failed, rig.pronated, rig.normal]
    for sid, findings in ((rig.normal, "none"), (rig.pronated, "1")):
        row = dom.find("tr", data_session=str(sid))
        cadence = rig.reports[sid]["spatiotemporal"]["cadence_steps_per_min"]
        assert row.find(data_cell="cadence").text == number(cadence, 1)
        assert row.find(data_cell="findings").text == findings
        assert row.find("a").attrs["href"] == f"/sessions/{sid}"
    assert dom.find("tr", data_session=str(rig.failed)).find(data_cell="findings").text == "no report"


@pytest.mark.parametrize("which", ["normal", "pronated"])
def test_report_page_shows_the_stored_values_findings_and_curves(rig, clinician, which):
    sid = getattr(rig, which)
    report = rig.reports[sid]
    sp = report["spatiotemporal"]
    dom = clinician.dom(f"/sessions/{sid}")
    assert dom.find(data_cell="cadence").text == number(sp["cadence_steps_per_min"], 1)
    for side in ("left", "right"):
        assert dom.find(data_cell=f"stance_pct.{side}").text == number(sp["stance_pct"][side], 1)
        assert dom.find(data_cell=f"cycles_used.{side}").text == str(report["cycles_used"][side])
    assert dom.find(data_cell="stance_pct.si").text.startswith(number(sp["symmetry_index_pct"]["stance_pct"], 1, True))

    findings = dom.find_all("li", data_code="excessive_rearfoot_eversion")
    if which == "pronated":
        (f,) = findings
        assert f.attrs["data-where"] == "left" and f.attrs["data-level"] == "present"
        stored = next(x for x in report["findings"] if x["code"] == "excessive_rearfoot_eversion")
        assert f.find(data_cell="value").text == f"{number(stored['value'], 1)}°"
        assert f.find(data_cell="threshold").text == "8.0°"
        assert "2D" in f.text and stored["reference"] in f.text
    else:
        assert findings == [] and dom.find(id="no-findings")

    for curve in ("hip_flexion_2d_deg", "knee_flexion_2d_deg", "ankle_dorsiflexion_2d_deg",
                  "rearfoot_eversion_2d_deg", "knee_fppa_2d_deg"):
        svg = dom.find("figure", data_curve=curve).find("svg")
        for side in ("left", "right"):
            assert svg.find_all("polyline", **{"class": f"mean-curve {side}"}), (curve, side)
            assert svg.find_all("polygon", **{"class": f"sd-band {side}"}), (curve, side)
        assert "2D" in dom.find("figure", data_curve=curve).find("figcaption").text
    frames = {v: dom.find(data_cell=f"frames.{v}").text for v in VIEWS}
    assert frames == {v: str(report["quality"]["frames"][v]) for v in VIEWS}


def test_a_session_without_a_report_says_why(rig, clinician):
    dom = clinician.dom(f"/sessions/{rig.failed}")
    error = rig.storage.report(rig.failed)[1]
    assert error and dom.find(id="no-report").find("span", **{"class": "reason"}).text == error


def test_compare_marks_the_rearfoot_angle_changed_and_cadence_not(rig, clinician):
    dom = clinician.dom(f"/compare?a={rig.normal}&b={rig.pronated}")
    table = dom.find("table", id="comparison")
    assert table.find("tr", data_measure="rearfoot_eversion_2d_deg", data_side="left").attrs["data-status"] == "changed"
    assert table.find("tr", data_measure="cadence_steps_per_min").attrs["data-status"] == "no change detected"
    summary = dom.find(id="changed-summary")
    assert summary.find_all("li", data_measure="rearfoot_eversion_2d_deg", data_side="left")
    assert not summary.find_all("li", data_measure="cadence_steps_per_min")
    # the same verdicts and MDC as `gaitrig compare` on the stored reports
    a, b = (json.loads(rig.storage.report(sid)[0]) for sid in (rig.normal, rig.pronated))
    for r in compare_reports(a, b)["measures"]:
        tr = table.find("tr", data_measure=r["measure"], data_side=r["side"] or "both")
        assert tr.attrs["data-status"] == r["verdict"], r["measure"]
        digits = max(MEASURE_LABELS[r["measure"]][2], 1 - math.floor(math.log10(r["mdc95"])))  # 2 significant
        assert tr.find(data_cell="mdc").text == number(r["mdc95"], digits)


def test_bad_ids_get_a_404_page_not_a_traceback(rig, clinician, cookie):
    dom = clinician.dom("/sessions/999")
    assert dom.find("section", data_status="404").find("h1").text == "Not found"
    assert "no session 999" in dom.text
    for path, status in (("/sessions/999", 404), ("/sessions/abc", 404), (f"/compare?a={rig.normal}&b=999", 404),
                         ("/compare?a=x&b=1", 400), (f"/compare?a={rig.normal}", 400), ("/nowhere", 404),
                         (f"/compare.pdf?a={rig.normal}&b={rig.failed}", 404), ("/compare.pdf?a=1&b=1", 400)):
        code, body = http(rig.url + path, cookie)
        assert code == status and "Traceback" not in body and "<h1>" in body, path
    code, body = http(rig.url + "/api/sessions/999", cookie)
    assert code == 404 and "no session 999" in json.loads(body)["error"]


def test_json_api_matches_the_database(rig, cookie):
    conn = sqlite3.connect(rig.db_path)
    code, body = http(rig.url + "/api/sessions", cookie)
    listed = {s["id"]: s for s in json.loads(body)["sessions"]}
    assert code == 200
    for sid, state, stop, started, ended, pulses, complete in conn.execute(
            "SELECT id, state, stop_reason, started_t, ended_t, pulses_sent, complete FROM sessions"):
        s = listed[sid]
        assert (s["state"], s["stop_reason"], s["started_t"], s["ended_t"], s["pulses_sent"]) == \
               (state, stop, started, ended, pulses)
        assert s["complete"] == (None if complete is None else bool(complete))
    for sid in (rig.normal, rig.pronated):
        stored, error = conn.execute("SELECT report, error FROM session_reports WHERE session_id = ?", (sid,)).fetchone()
        code, body = http(f"{rig.url}/api/sessions/{sid}", cookie)
        detail = json.loads(body)
        assert code == 200 and detail["report"] == json.loads(stored) and detail["analysis_error"] == error
        assert listed[sid]["cadence_steps_per_min"] == json.loads(stored)["spatiotemporal"]["cadence_steps_per_min"]
        frames = dict(conn.execute("SELECT view, frames_received FROM session_nodes WHERE session_id = ?", (sid,)))
        assert {n["view"]: n["frames_received"] for n in detail["nodes"]} == frames == listed[sid]["frames"]
    conn.close()


def test_the_pages_cannot_write_the_database(rig):
    conn = ReadOnlyDatabase(rig.db_path)._connect()
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
        conn.execute("DELETE FROM sessions")
    conn.close()


def test_recording_banner_while_the_coordinator_writes(rig, clinician, cookie):
    """The coordinator keeps its connection and opens a session; the pages see it (WAL)."""
    sid = rig.storage.open_session("belt at walking speed", time.time(), FPS, VIEWS)
    try:
        dom = clinician.dom("/")
        banner = dom.find(id="recording-banner")
        assert f"session {sid}" in banner.text and "Recording now" in banner.text
        assert dom.find("tr", data_session=str(sid)).find(data_cell="findings").text == "not yet"
        assert json.loads(http(rig.url + "/api/sessions", cookie)[1])["recording_session_id"] == sid
    finally:
        rig.storage.mark_closing(sid, "belt stopped")
        rig.storage.close_session(sid, time.time(), False)
    assert "recording-banner" not in http(rig.url + "/", cookie)[1]


def test_tablet_sized_screenshot(rig, clinician, screenshot_dir):
    """A portrait tablet's window: the report renders and nothing runs off the right edge
    (look at the screenshot when changing the CSS)."""
    import cv2
    clinician.page.goto(f"{rig.url}/sessions/{rig.pronated}")
    assert clinician.page.evaluate("document.documentElement.scrollWidth") <= 800
    shot = screenshot_dir / "report-800x1280.png"
    clinician.page.screenshot(path=str(shot))
    image = cv2.imread(str(shot))
    assert image.shape[:2] == (1280, 800)
    assert image.std() > 20  # text, tables and the top bar, not a blank page


# --- the daemon as systemd runs it --------------------------------------------------------------
def test_gaitrig_web_notifies_ready_once_listening_pings_and_stops(rig, cookie, tmp_path):
    sock = str(tmp_path / "notify.sock")
    listener = Listener(sock)
    port = free_port()
    env = {**os.environ, "NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "1000000"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "web", "--database", str(rig.db_path),
                             "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert "READY=1" in listener.wait_for("READY=1", timeout_s=60)  # generous: a loaded 2-core machine
        code, body = http(f"http://127.0.0.1:{port}/api/sessions", cookie)  # listening as soon as READY came
        assert http(f"http://127.0.0.1:{port}/api/sessions")[0] == 401  # same clinic file, same log-ins
        assert code == 200 and {rig.normal, rig.pronated} <= {s["id"] for s in json.loads(body)["sessions"]}
        t0 = time.monotonic()
        time.sleep(1.2)
        assert listener.pings_between(t0, time.monotonic()) >= 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, proc.stderr.read()
        listener.wait_for("STOPPING=1")
    finally:
        proc.kill()
        proc.wait(5)
        listener.close()
