"""The clinic's workflow on the tablet, end to end in real headless Chromium: log in, create a
patient, pick the condition before a walk (the next recorded session gets it) or assign one
afterwards, open the report, compare two conditions, download the PDF and the CSVs and read
them back; every route refuses a logged-out request, a form without its CSRF token is
refused, five wrong passwords lock an account, each role sees only its pages, the audit log
says who opened which patient and the process log says nothing of them; export and erase."""
from __future__ import annotations

import csv
import io
import json
import re
import urllib.error
import urllib.request
import subprocess
import sys
import threading  # noqa: F401  (annotations)
import time
from pathlib import Path

import pytest
from pypdf import PdfReader
from starlette.routing import Route
from test_web import (PASSWORD, T0, USERS, WALKING_MIN_M_S, Dom, Tablet, http, login_cookie, record_walk,  # noqa: F401
                      rig)

from rig.clinic.accounts import Accounts
from rig.clinic.model import ClinicError, Condition, LockoutPolicy, PatientFields, group_visits
from rig.clinic.records import Records
from rig.clinic.store import ClinicStore
from rig.gait import compare_reports
from rig.sim.walker import WalkerParams
from rig.web.formatting import number

NAME = "Zofia Łukasiewicz-Test"  # a name outside Latin-1, as patients' names are
ORTHOTIC = "FootChair, arch 3"


def gaitrig(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rig.cli", *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def carol(rig, browser):
    t = Tablet(browser, rig.url).login("carol")
    yield t
    t.close()


@pytest.fixture(scope="module")
def visit(rig, carol):
    """Carol creates a patient in the browser, picks "orthotic" for the next walk, the rig
    records it; then she assigns the earlier, normal session afterwards as "barefoot"."""
    page = carol.page
    page.goto(rig.url + "/patients")
    page.fill("#name", NAME)
    page.fill("#birth_date", "1961-04-12")
    page.fill("#clinic_id", "K-1042")
    page.fill("#notes", "knee pain on the left when running")
    with page.expect_navigation():
        page.click("#create-patient")
    pid = int(re.search(r"/patients/(\d+)$", page.url).group(1))
    page.check("#next-walk input[value=orthotic]")
    page.fill("#next-walk input[name=label]", ORTHOTIC)
    with page.expect_navigation():
        page.click("#set-next-walk")
    assert ORTHOTIC in page.inner_text("#pending")
    walked = record_walk(rig.storage, WalkerParams(noise_px=2.0, rearfoot_eversion_left_deg=12.0), seed=3,
                         started_t=rig.storage.session(rig.pronated).started_t + 600)
    rig.reports[walked] = json.loads(rig.storage.report(walked)[0])
    page.goto(f"{rig.url}/sessions/{rig.normal}")
    page.select_option("#assign-patient", str(pid))
    page.check("#assign input[value=barefoot]")
    with page.expect_navigation():
        page.click("#assign-button")
    return pid, walked


# --- the workflow -------------------------------------------------------------------------------
def test_the_walk_after_the_pick_is_the_patients_in_that_condition(rig, carol, visit):
    pid, walked = visit
    dom = carol.dom("/")
    row = dom.find("tr", data_session=str(walked))
    assert row.find(data_cell="patient").text == NAME
    assert row.find(data_cell="condition").text == f"orthotic: {ORTHOTIC}"
    assert dom.find("tr", data_session=str(rig.normal)).find(data_cell="condition").text == "barefoot"
    assert dom.find("tr", data_session=str(rig.pronated)).find(data_cell="patient").text == "not assigned"
    dom = carol.dom(f"/patients/{pid}")
    assert dom.find(id="patient-name").text == NAME
    listed = {int(tr.attrs["data-session"]): tr.find(data_cell="condition").text
              for tr in dom.find(id="visits").find_all("tr") if "data-session" in tr.attrs}
    assert listed == {rig.normal: "barefoot", walked: f"orthotic: {ORTHOTIC}"}
    assert not dom.find_all(id="pending")  # the pick was used up by the walk


def test_compare_offers_only_the_patients_sessions_and_names_the_conditions(rig, carol, visit):
    pid, walked = visit
    dom = carol.dom(f"/sessions/{walked}")
    offered = {int(o.attrs["value"]) for o in dom.find("select", id="compare-b").find_all("option")}
    assert offered == {rig.normal}  # not the other, unassigned walk
    page = carol.page
    page.goto(f"{rig.url}/patients/{pid}")
    page.select_option("#compare-a", str(rig.normal))
    page.select_option("#compare-b", str(walked))
    with page.expect_navigation():
        page.click("#compare button")
    dom = Dom.parse(page.content())
    assert dom.find(data_cell="condition-A").text == "barefoot"
    assert dom.find(data_cell="condition-B").text == f"orthotic: {ORTHOTIC}"
    row = dom.find("table", id="comparison").find("tr", data_measure="rearfoot_eversion_2d_deg", data_side="left")
    assert row.attrs["data-status"] == "changed"


def test_pdf_report_names_patient_condition_and_the_reports_numbers(rig, carol, visit, tmp_path):
    pid, walked = visit
    carol.page.goto(f"{rig.url}/sessions/{walked}")
    with carol.page.expect_download() as dl:
        carol.page.click("#downloads a[href$='report.pdf']")
    path = tmp_path / "report.pdf"
    dl.value.save_as(path)
    assert dl.value.suggested_filename == f"gait-report-session-{walked}.pdf"  # no name in the file name
    reader = PdfReader(path)
    text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
    report = rig.reports[walked]
    sp = report["spatiotemporal"]
    assert NAME in text and "1961-04-12" in text and "K-1042" in text and f"orthotic: {ORTHOTIC}" in text
    assert f"Cadence {number(sp['cadence_steps_per_min'], 1)} steps/min" in text
    assert f"Stance (% of stride) {number(sp['stance_pct']['left'], 1)}" in text
    finding = next(f for f in report["findings"] if f["code"] == "excessive_rearfoot_eversion")
    assert "PRESENT: " + " ".join(finding["text"].split()) in text
    assert "Findings judged from 2D projections of video, not 3D joint angles. No 3D: rig not calibrated" in text
    assert "Joint angles over the gait cycle" in text and len(reader.pages) >= 2
    for label in report["kinematics"]["labels"].values():
        if label:
            assert " ".join(label.split()) in text or label.split()[0] in text


def test_comparison_pdf_prints_the_pages_rows_verdicts_and_mdc(rig, carol, visit, tmp_path):
    """Downloaded from the compare page's link: both sessions with patient and condition,
    every row of the page's table cell for cell (difference, interval, MDC, verdict), the
    method; the download is in the audit log."""
    pid, walked = visit
    carol.page.goto(f"{rig.url}/compare?a={rig.normal}&b={walked}")
    page_rows = Dom.parse(carol.page.content()).find("table", id="comparison").find("tbody").find_all("tr")
    with carol.page.expect_download() as dl:
        carol.page.click("#downloads a[href^='/compare.pdf']")
    dl.value.save_as(tmp_path / "comparison.pdf")
    assert dl.value.suggested_filename == f"comparison-sessions-{rig.normal}-{walked}.pdf"
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(tmp_path / "comparison.pdf").pages)
    assert f"session {rig.normal} (A) and {walked} (B)" in text
    assert f"Condition barefoot orthotic: {ORTHOTIC}" in text and f"Patient {NAME} (K-1042) {NAME} (K-1042)" in text
    a, b = (rig.reports[rig.normal], rig.reports[walked])
    assert len(page_rows) == len(compare_reports(a, b)["measures"])
    verdicts = [tr.find(data_cell="verdict").text for tr in page_rows]
    assert "changed" in verdicts and "no change detected" in verdicts
    for tr in page_rows:  # side, A, B, B − A, CI, MDC, result: as the page shows them, in its order
        cells = " ".join(td.text for td in tr.find_all("td"))
        assert cells in text, cells
    assert "Benjamini–Hochberg" in text and "MDC95" in text and "Differences are B − A" in text
    log = ClinicStore(rig.clinic_path).audit_log(pid)
    assert ("carol", "download comparison PDF") in [(e.username, e.action) for e in log]


def test_csv_downloads_hold_every_measure_and_every_stride(rig, carol, visit, tmp_path):
    _, walked = visit
    report = rig.reports[walked]
    files = {}
    for link in ("measures.csv", "strides.csv"):
        carol.page.goto(f"{rig.url}/sessions/{walked}")
        with carol.page.expect_download() as dl:
            carol.page.click(f"#downloads a[href$='{link}']")
        dl.value.save_as(tmp_path / link)
        files[link] = list(csv.DictReader(io.StringIO((tmp_path / link).read_text())))
    measures = {(r["group"], r["measure"], r["side"]): r for r in files["measures.csv"]}
    sp = report["spatiotemporal"]
    assert float(measures["spatiotemporal", "cadence_steps_per_min", "both"]["value"]) == sp["cadence_steps_per_min"]
    ci = measures["spatiotemporal", "cadence_ci95_steps_per_min", "both"]
    assert [float(ci["ci95_low"]), float(ci["ci95_high"])] == sp["cadence_ci95_steps_per_min"]
    for side in ("left", "right"):
        assert float(measures["spatiotemporal", "stance_pct", side]["value"]) == sp["stance_pct"][side]
        assert float(measures["spatiotemporal", f"cv_pct.stride_time_s", side]["value"]) == \
            sp["cv_pct"]["stride_time_s"][side]
        ev = report["kinematics"]["frontal_summary"]["rearfoot_eversion_2d_deg"][side]
        row = measures["frontal_per_stride", "rearfoot_eversion_2d_deg", side]
        assert (float(row["value"]), int(row["n"])) == (ev["mean"], ev["n"])
    strides = files["strides.csv"]
    for side in ("left", "right"):
        for measure in ("stride_time_s", "stance_pct", "rearfoot_eversion_2d_deg"):
            got = [float(r["value"]) for r in strides if r["side"] == side and r["measure"] == measure]
            assert got == report["per_stride"][side][measure], (side, measure)
            assert [int(r["stride"]) for r in strides if r["side"] == side and r["measure"] == measure] == \
                list(range(1, len(got) + 1))


# --- the gate -------------------------------------------------------------------------------------
def _concrete(path: str, ids: dict[str, int]) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: str(ids[m.group(1)]), path)


def test_every_route_refuses_a_logged_out_request(rig, visit):
    """Enumerated from the app itself, so a route added later is covered without editing this."""
    pid, walked = visit
    ids = {"session_id": walked, "patient_id": pid, "view": "rear"}
    checked = 0
    for route in rig.app.routes:
        if not isinstance(route, Route) or route.path == "/login":
            continue
        for method in sorted(route.methods - {"HEAD"}):
            url = rig.url + _concrete(route.path, ids)
            code, body = http(url, data={} if method == "POST" else None, method=method, follow=False)
            expected = 401 if route.path.startswith("/api/") else 303
            assert code == expected, (method, route.path, code)
            assert NAME not in body and "K-1042" not in body
            checked += 1
    assert checked >= 19
    assert http(rig.url + "/nowhere", follow=False)[0] == 303  # unknown paths too
    assert http(rig.url + "/static/tablet.css")[0] == 200  # the style sheet is public
    code, body = http(rig.url + f"/patients/{pid}")  # followed: ends on the log-in form
    assert code == 200 and 'id="login-form"' in body and f"next=%2Fpatients%2F{pid}" not in body


def test_a_forged_or_stale_cookie_is_refused(rig):
    good = login_cookie(rig.url, "carol")
    name, value = good.split("=", 1)
    token, mac = value.split(".")
    for bad in (f"{name}={token}.{mac[:-2]}xx", f"{name}={token}", f"{name}=x.{mac}"):
        assert http(rig.url + "/api/sessions", bad)[0] == 401
    assert http(rig.url + "/api/sessions", good)[0] == 200
    code, _ = http(rig.url + "/logout", good, data={"csrf": _csrf(rig, good)}, follow=False)
    assert code == 303
    assert http(rig.url + "/api/sessions", good)[0] == 401  # logged out on the server, not just in the browser


def _csrf(rig, cookie: str) -> str:
    return Dom.parse(http(rig.url + "/patients", cookie)[1]).find("form", id="new-patient") \
        .find("input", name="csrf").attrs["value"]


def test_a_form_post_without_its_csrf_token_is_refused(rig):
    cookie = login_cookie(rig.url, "carol")
    records = Records(ClinicStore(rig.clinic_path))
    before = len(records.find())
    for form in ({"name": "Forged Patient"}, {"name": "Forged Patient", "csrf": "guess"}):
        code, body = http(rig.url + "/patients", cookie, data=form, follow=False)
        assert code == 403 and "out of date" in body
    other = login_cookie(rig.url, "adam")  # a real token, but another log-in's
    code, _ = http(rig.url + "/patients", cookie, data={"name": "Forged Patient", "csrf": _csrf(rig, other)},
                   follow=False)
    assert code == 403
    assert len(records.find()) == before
    code, _ = http(rig.url + "/patients", cookie, data={"name": "Real Patient", "csrf": _csrf(rig, cookie)},
                   follow=False)
    assert code == 303 and len(records.find()) == before + 1
    code, _ = http(rig.url + "/login", data={"username": "carol", "password": PASSWORD}, follow=False)
    assert code == 403  # the log-in form too: no CSRF token, no log-in


def test_five_wrong_passwords_lock_the_account_until_unlocked(rig, browser):
    assert gaitrig("users", "add", "lena", "--role", "clinician", "--password-stdin",
                   "--database", str(rig.db_path), stdin=PASSWORD + "\n").returncode == 0
    t = Tablet(browser, rig.url)
    try:
        for attempt in range(1, 6):
            t.login("lena", "not the password")
            message = t.page.inner_text("#login-error")
            assert ("locked" in message) == (attempt == 5), (attempt, message)
        t.login("lena")  # the right password no longer helps
        assert "locked" in t.page.inner_text("#login-error") and t.page.url.endswith("/login")
        listed = gaitrig("users", "list", "--database", str(rig.db_path)).stdout
        assert "lena\tclinician\tlocked" in listed
        assert gaitrig("users", "unlock", "lena", "--database", str(rig.db_path)).returncode == 0
        t.login("lena")
        assert t.page.inner_text("#who").startswith("lena")
    finally:
        t.close()


def test_the_lock_lasts_the_configured_time():
    policy = LockoutPolicy(after_failures=3, lock_s=60.0)
    assert policy.after_failure(0, 100.0) == (1, None)
    assert policy.after_failure(2, 100.0) == (3, 160.0)


def test_lockout_expires_after_lock_s(tmp_path):
    accounts = Accounts(ClinicStore(tmp_path / "c.sqlite"), LockoutPolicy(2, 60.0))
    accounts.add("ida", "clinician", PASSWORD)
    assert accounts.log_in("ida", "wrong", now_t=1000.0).error
    assert accounts.log_in("ida", "wrong", now_t=1001.0).locked_now
    assert accounts.log_in("ida", PASSWORD, now_t=1060.0).token is None  # 59 s later: still locked
    assert accounts.log_in("ida", PASSWORD, now_t=1061.5).token  # the lock has run out
    assert accounts.get("ida").failed_logins == 0


def test_sessions_end_after_idle_time(tmp_path):
    accounts = Accounts(ClinicStore(tmp_path / "c.sqlite"), idle_s=600.0, max_s=3600.0)
    accounts.add("ida", "clinician", PASSWORD)
    token = accounts.log_in("ida", PASSWORD, now_t=1000.0).token
    assert accounts.session(token, now_t=1500.0).user.username == "ida"
    assert accounts.session(token, now_t=2101.0) is None  # 601 s after the last request
    token = accounts.log_in("ida", PASSWORD, now_t=5000.0).token
    for t in range(5300, 8600, 300):
        assert accounts.session(token, now_t=float(t)) is not None
    assert accounts.session(token, now_t=8601.0) is None  # an hour after logging in, however busy


# --- roles, audit, logs ---------------------------------------------------------------------------
def test_the_technician_sees_rig_health_and_no_patient(rig, browser, visit):
    pid, walked = visit
    t = Tablet(browser, rig.url).login("tess")
    try:
        assert t.page.url.endswith("/rig")
        dom = Dom.parse(t.page.content())
        row = dom.find("tr", data_session=str(walked))
        assert row.find(data_cell="frames.rear").text == str(rig.reports[walked]["quality"]["frames"]["rear"])
        assert NAME not in dom.text
        for path in ("/", f"/patients/{pid}", f"/sessions/{walked}", f"/sessions/{walked}/report.pdf",
                     f"/compare.pdf?a={rig.normal}&b={walked}", "/admin/users", "/patients"):
            t.page.goto(rig.url + path)
            assert "Not allowed" in t.page.inner_text("h1"), path
            assert NAME not in t.page.content()
    finally:
        t.close()
    cookie = login_cookie(rig.url, "tess")
    assert http(rig.url + "/api/sessions", cookie)[0] == 403


def test_only_an_admin_manages_accounts(rig):
    carol, adam = login_cookie(rig.url, "carol"), login_cookie(rig.url, "adam")
    assert http(rig.url + "/admin/users", carol)[0] == 403
    code, body = http(rig.url + "/admin/users", adam)
    assert code == 200 and {tr.attrs["data-user"] for tr in Dom.parse(body).find("table", id="users").find_all("tr")
                            if "data-user" in tr.attrs} >= set(USERS)
    csrf = Dom.parse(body).find("form", id="new-user").find("input", name="csrf").attrs["value"]
    form = {"csrf": csrf, "action": "add", "username": "nina", "role": "technician", "password": "x" * 12}
    assert http(rig.url + "/admin/users", adam, data=form, follow=False)[0] == 303
    assert Accounts(ClinicStore(rig.clinic_path)).get("nina").role == "technician"


def test_audit_log_records_who_opened_which_patient(rig, carol, visit):
    pid, walked = visit
    carol.dom(f"/patients/{pid}")
    carol.dom(f"/sessions/{walked}")
    log = ClinicStore(rig.clinic_path).audit_log(pid)
    actions = [(e.username, e.action, e.session_id) for e in log]
    assert ("carol", "open patient", None) in actions
    assert ("carol", "open report", walked) in actions
    assert ("carol", "create patient", None) in actions
    assert all(NAME not in e.action for e in log)


def test_the_daemon_log_holds_nothing_of_a_patient(rig, visit, tmp_path):
    """`gaitrig web` as it runs under systemd, at DEBUG: patient pages, posts and downloads
    leave neither the name nor the clinic ID nor the notes on stderr."""
    from rig.sim.broker import free_port
    pid, walked = visit
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "--log-level", "DEBUG", "web", "--database",
                             str(rig.db_path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_listening(url)
        cookie = login_cookie(url, "carol")
        for path in (f"/patients/{pid}", f"/patients?q={NAME.split()[0]}", f"/sessions/{walked}",
                     f"/sessions/{walked}/report.pdf", f"/patients/{pid}/export.zip", "/nowhere"):
            assert http(url + path, cookie)[0] in (200, 404), path
        csrf = _csrf(rig, cookie)
        http(url + "/patients", cookie, data={"csrf": csrf, "name": NAME, "clinic_id": "K-1042"})  # a duplicate ID
    finally:
        proc.terminate()
        err = proc.communicate(timeout=15)[1]
    assert "tablet pages on" in err  # the log is there ...
    for secret in (NAME, NAME.split()[0], "K-1042", "knee pain", "1961-04-12"):
        assert secret not in err  # ... and says nothing of the patient


def _wait_listening(url: str, timeout_s: float = 30.0) -> None:
    import time
    import urllib.error
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if http(url + "/login")[0] == 200:
                return
        except urllib.error.URLError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not start listening")


# --- export and erase ----------------------------------------------------------------------------
def test_export_then_erase_by_the_admins_button(rig, browser, visit, tmp_path):
    pid, walked = visit
    records = Records(ClinicStore(rig.clinic_path))
    gone = records.create(PatientFields.parse("Erase Button Test", "", "E-2", ""), "adam")
    sid = tiny_session(rig)
    records.assign(sid, gone.id, Condition.parse("shoes", "trainers"), "adam")
    t = Tablet(browser, rig.url).login("adam")
    try:
        t.page.goto(f"{rig.url}/patients/{pid}")
        with t.page.expect_download() as dl:
            t.page.click("#export")
        assert dl.value.suggested_filename == f"patient-{pid}.zip"  # no name in the file name
        dl.value.save_as(tmp_path / "p.zip")
        exported = check_patient_archive(rig, tmp_path / "p.zip", {rig.normal, walked}, tmp_path / "unzipped")
        assert exported["patient"]["name"] == NAME and exported["patient"]["clinic_id"] == "K-1042"
        by_session = {s["session_id"]: s for s in exported["sessions"]}
        assert by_session[walked]["label"] == ORTHOTIC and by_session[walked]["report"] == rig.reports[walked]
        assert any(a["action"] == "open patient" for a in exported["audit"])
        assert any(a["action"] == "export patient" and a["username"] == "adam" for a in exported["audit"])

        # erase the other patient (the visit's sessions serve the tests below): no coordinator runs
        # here, so their recordings wait for it; no node keeps video of it
        t.page.goto(f"{rig.url}/patients/{gone.id}")
        t.page.fill("#confirm", "wrong")
        with t.page.expect_navigation():
            t.page.click("#erase")
        assert "type the patient number" in t.page.inner_text("main")
        t.page.goto(f"{rig.url}/patients/{gone.id}")
        t.page.fill("#confirm", str(gone.id))
        with t.page.expect_navigation():
            t.page.click("#erase")
        shown = [line for line in t.page.inner_text("#erased").splitlines() if line]
        assert shown[:2] == [f"erased patient {gone.id} and 1 session",
                             "recordings of 1 session not deleted yet: the coordinator deletes them when it runs"]
        t.page.goto(f"{rig.url}/patients/{gone.id}")
        assert "Not found" in t.page.inner_text("h1")
        assert t.page.goto(f"{rig.url}/sessions/{sid}").status == 404  # at once, before the coordinator
        dom = Dom.parse(t.page.goto(rig.url + "/").text())
        assert not dom.find_all("tr", data_session=str(sid)) and dom.find("tr", data_session=str(walked))
        assert "Erase Button Test" not in dom.text
    finally:
        t.close()
    store = ClinicStore(rig.clinic_path)
    assert Records(store).assignments(patient_id=gone.id) == {}
    assert store.audit_log(gone.id)[1].action == "erase patient (1 session)"
    assert store.audit_log(gone.id)[0].action.startswith("erase patient: 1 session, video of 0 deleted now")


def tiny_session(rig) -> int:
    """A closed session without frames (two belt samples), to erase without touching the module's walks."""
    sid = rig.storage.open_session("manual", T0 + 86400, 60.0, ["rear"])
    rig.storage.add_belt_sample(sid, T0 + 86400.5, True, 0.3, 0.0, False)
    rig.storage.add_belt_sample(sid, T0 + 86401, False, 0.0, 0.0, True)
    rig.storage.close_session(sid, T0 + 86401, False)
    rig.storage.commit()
    return sid


def check_patient_archive(rig, path, sessions: set[int], unzip_dir) -> dict:
    """The archive holds exactly the files of ``sessions`` (no other patient's, no unassigned
    one), each listed in patient.json's manifest; every view's keypoint file has the stored
    frames and re-analyses with `gaitrig analyze` (at the belt speed the coordinator used) to
    the stored report; belt.csv is the stored samples, digit for digit. Returns patient.json."""
    import zipfile
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        zf.extractall(unzip_dir)
    manifest = json.loads((unzip_dir / "patient.json").read_text(encoding="utf-8"))
    assert {f["name"] for f in manifest["files"]} == names
    assert {s["session_id"] for s in manifest["sessions"]} == sessions
    assert {n.split("/")[0] for n in names} == {"patient.json"} | {f"session-{sid}" for sid in sessions}
    assert any("review video" in n for n in manifest["not_included"])
    for entry in manifest["sessions"]:
        sid, folder = entry["session_id"], unzip_dir / f"session-{entry['session_id']}"
        stored_frames = {n.view: n.frames_received for n in rig.storage.nodes(sid)}
        assert entry["frames"] == {v: n for v, n in stored_frames.items() if n}, sid
        files = sorted(str(folder / f"keypoints-{v}.jsonl") for v in entry["frames"])
        for f in files:
            assert len(Path(f).read_text().splitlines()) == 1 + entry["frames"][Path(f).stem.split("-")[1]]
        with open(folder / "belt.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == ["t_unix_s", "t_s", "running", "speed_m_s", "incline_pct", "estop"]
        assert [(float(r[0]), bool(int(r[2])), float(r[3]), float(r[4]), bool(int(r[5]))) for r in rows[1:]] \
            == list(rig.storage.belt_samples(sid))
        report = entry["report"]
        if report is None:
            assert not (folder / "report.json").exists()
            continue
        assert json.loads((folder / "report.json").read_text()) == report
        again = gaitrig("analyze", *files, "--belt-speed", repr(entry["analysis_belt_speed_m_s"]), "--json")
        assert again.returncode == 0, again.stderr
        assert_same_report(json.loads(again.stdout), report)
    return manifest


def assert_same_report(a, b, where: str = "") -> None:
    """The same report as far as the keypoint files' precision allows (pixels to 0.01 px, t to
    1 µs): every key, list length, count, string and finding identical, each number within
    0.05 (measured: at most 0.036°, a rearfoot angle's mean, on these walks)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_report(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for x, y in zip(a, b):
            assert_same_report(x, y, where)
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=0.05), where
    else:
        assert a == b, where


def test_erase_by_command(rig, tmp_path):
    records = Records(ClinicStore(rig.clinic_path))
    p = records.create(PatientFields.parse("Erase Me", "", "E-1", ""), "test")
    sid = tiny_session(rig)
    records.assign(sid, p.id, Condition.parse("shoes", "Brooks Ghost 15"), "test")
    out = gaitrig("patients", "export", str(p.id), "--json-only", "--database", str(rig.db_path))
    assert json.loads(out.stdout)["sessions"][0]["label"] == "Brooks Ghost 15"
    done = gaitrig("patients", "export", str(p.id), "--out", str(tmp_path / "p.zip"), "--database", str(rig.db_path))
    assert done.returncode == 0 and "Erase Me" not in done.stdout + done.stderr
    assert done.stdout.startswith(f"wrote {tmp_path / 'p.zip'}: patient {p.id}, 1 session, 2 files")
    exported = check_patient_archive(rig, tmp_path / "p.zip", {sid}, tmp_path / "unzipped")
    assert exported["sessions"][0]["keypoints_error"] == \
        f"session {sid} never started its trigger train: nothing to export"
    assert not list(tmp_path.glob("*.partial"))
    assert "--out" in gaitrig("patients", "export", str(p.id), "--database", str(rig.db_path)).stderr
    assert gaitrig("patients", "erase", str(p.id), "--database", str(rig.db_path)).returncode == 1  # no terminal
    done = gaitrig("patients", "erase", str(p.id), "--yes", "--database", str(rig.db_path))
    assert done.returncode == 0 and "Erase Me" not in done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == f"erased patient {p.id} and 1 session"
    assert records.patient(p.id) is None and sid not in records.assignments([sid]) and sid in records.erased()
    assert gaitrig("patients", "erase", str(p.id), "--yes", "--database", str(rig.db_path)).returncode == 1


# --- the rules, without a browser ----------------------------------------------------------------
@pytest.mark.parametrize("kind, label, error", [
    ("barefoot", "x", "no label"), ("shoes", "", "name the shoes"), ("orthotic", "  ", "name the orthotic"),
    ("socks", "", "unknown condition"), ("shoes", "x" * 81, "at most 80")])
def test_condition_rules(kind, label, error):
    with pytest.raises(ClinicError, match=error):
        Condition.parse(kind, label)


def test_condition_label_is_tidied():
    assert str(Condition.parse("orthotic", "  FootChair,   arch 3 ")) == "orthotic: FootChair, arch 3"


@pytest.mark.parametrize("birth, error", [("12/04/1961", "not a date"), ("1850-01-01", "between 1900"),
                                          ("2999-01-01", "between 1900")])
def test_patient_rules(birth, error):
    with pytest.raises(ClinicError, match=error):
        PatientFields.parse("A Patient", birth)
    with pytest.raises(ClinicError, match="needs a name"):
        PatientFields.parse("   ")


def test_visits_group_sessions_by_day_newest_first():
    import datetime as dt
    day1 = dt.datetime(2026, 3, 2, 9, 0).timestamp()
    day2 = dt.datetime(2026, 3, 9, 15, 0).timestamp()
    visits = group_visits([(7, day1 + 600), (5, day1), (9, day2)])
    assert [(v.day.isoformat(), v.session_ids) for v in visits] == [("2026-03-09", (9,)), ("2026-03-02", (5, 7))]


def test_users_add_refuses_weak_duplicate_or_missing_passwords(rig):
    db = str(rig.db_path)
    assert "at least 10" in gaitrig("users", "add", "weak", "--role", "clinician", "--password-stdin",
                                    "--database", db, stdin="short\n").stderr
    assert "already" in gaitrig("users", "add", "carol", "--role", "clinician", "--password-stdin",
                                "--database", db, stdin=PASSWORD + "\n").stderr
    assert "--password-stdin" in gaitrig("users", "add", "nopass", "--role", "admin", "--database", db).stderr
    assert gaitrig("users", "add", "x", "--role", "boss", "--database", db).returncode == 2
    assert "nopass" not in gaitrig("users", "list", "--database", db).stdout


# --- a 10-inch tablet ----------------------------------------------------------------------------
@pytest.mark.parametrize("width, height", [(800, 1280), (1280, 800)])
def test_tablet_pages_fit_the_screen_and_are_written_as_screenshots(rig, browser, visit, screenshot_dir,
                                                                    width, height):
    """Portrait and landscape: no page scrolls sideways; the comparison's Result column is
    inside the screen; buttons are finger-sized. Screenshots go to tests/output/screenshots."""
    pid, walked = visit
    t = Tablet(browser, rig.url, width, height).login("adam")
    try:
        for name, path in (("sessions", "/"), ("patient", f"/patients/{pid}"), ("report", f"/sessions/{walked}"),
                           ("compare", f"/compare?a={rig.normal}&b={walked}"), ("patients", "/patients"),
                           ("rig", "/rig")):
            t.page.goto(rig.url + path)
            assert t.page.evaluate("document.documentElement.scrollWidth") <= width, name
            t.page.screenshot(path=str(screenshot_dir / f"{name}-{width}x{height}.png"), full_page=True)
        right = t.page.evaluate("Math.max(...[...document.querySelectorAll('#comparison th, #comparison td')]"
                                ".map(e => e.getBoundingClientRect().right))")
        assert right <= width
        heights = t.page.evaluate("[...document.querySelectorAll('button, .button, select')]"
                                  ".map(e => e.getBoundingClientRect().height)")
        assert heights and min(heights) >= 44
    finally:
        t.close()


def test_tls_from_the_config_serves_https_with_a_secure_cookie(rig, tmp_path):
    """A certificate and key in the config: `gaitrig web` speaks HTTPS and marks the log-in
    cookie Secure (a self-signed certificate made here with openssl)."""
    import shutil
    import ssl
    import urllib.request
    from rig.sim.broker import free_port
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    config = tmp_path / "coordinator.toml"
    config.write_text(f'[storage]\ndatabase = "{rig.db_path}"\n[web]\ntls_certfile = "{cert}"\n'
                      f'tls_keyfile = "{key}"\n')
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "web", "--config", str(config), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    try:
        import time
        deadline, response = time.monotonic() + 30, None
        while response is None and time.monotonic() < deadline:
            try:
                response = urllib.request.urlopen(f"https://127.0.0.1:{port}/login", timeout=5, context=context)
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        assert response is not None and response.status == 200
        csrf = Dom.parse(response.read().decode()).find("input", name="csrf").attrs["value"]
        nonce = response.headers["Set-Cookie"]
        assert "Secure" in nonce and "HttpOnly" in nonce and "SameSite=strict" in nonce
        req = urllib.request.Request(f"https://127.0.0.1:{port}/login", headers={"Cookie": nonce.split(";")[0]},
                                     data=f"csrf={csrf}&username=carol&password={PASSWORD.replace(' ', '+')}".encode())
        with pytest.raises(urllib.error.HTTPError) as redirect:  # 303 not followed: the cookie is in it
            urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirectHandler).open(req)
        session = redirect.value.headers["Set-Cookie"]
        assert redirect.value.code == 303 and "gaitrig_session=" in session
        assert all(flag in session for flag in ("Secure", "HttpOnly", "SameSite=strict"))
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


class _NoRedirectHandler(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


# --- the live walk -------------------------------------------------------------------------------
LIVE_WALK_S = 8.0


def _coordinator_records_live(rig, started: "threading.Event", release: "threading.Event", done: list) -> None:
    """The coordinator's part, as it does it: frames at the trigger rate, belt samples,
    a commit twice a second or more; then the close and the analysis."""
    import numpy as np
    from test_web import FPS, VIEWS

    from rig.bus.payloads import KeypointFrame, encode_keypoints
    from rig.coordinator.analysis import analyze_session
    from rig.sim.walker import SimulatedWalker
    walker = SimulatedWalker(WalkerParams(noise_px=2.0), fps=FPS, seed=9)
    n = walker.n_frames(LIVE_WALK_S)
    lm = walker.render(np.arange(n), VIEWS)
    sid = rig.storage.open_session("belt at walking speed", time.time(), FPS, VIEWS)
    first = time.time()
    rig.storage.set_train(sid, first, None)
    started.set()
    sent = 0
    while sent < n:
        due = min(n, int((time.time() - first) * FPS))
        for i in range(sent, due):
            for view in VIEWS:
                frame = KeypointFrame(sid, i, first + i / FPS, lm[view][i], simulated=True)
                rig.storage.add_frame(sid, view, i, encode_keypoints(frame))
        sent = due
        rig.storage.add_belt_sample(sid, time.time(), True, 1.2, 0.0, False)
        rig.storage.commit()
        time.sleep(0.2)
    done.append(walker.truth(0.0, n / FPS).heel_strike_s)
    release.wait(60)  # the test reads the live page with every frame in
    rig.storage.set_train(sid, None, n)
    rig.storage.mark_closing(sid, "belt stopped")
    time.sleep(1.0)
    rig.storage.close_session(sid, time.time(), True)
    analyze_session(rig.storage, sid, WALKING_MIN_M_S)
    rig.storage.commit()
    done.append(sid)


def wait_until(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the page never showed it"
        time.sleep(0.2)


def test_the_live_page_follows_the_walk_without_reloading_then_opens_the_report(rig, carol, screenshot_dir):
    import threading

    import numpy as np
    page = carol.page
    page.goto(rig.url + "/live")
    assert "Waiting for the belt" in page.inner_text("#live-waiting")
    page.evaluate("window.__samePage = true")
    started, release, done = threading.Event(), threading.Event(), []
    coordinator = threading.Thread(target=_coordinator_records_live, args=(rig, started, release, done), daemon=True)
    coordinator.start()
    try:
        assert started.wait(30)
        page.wait_for_selector("#live-session", timeout=30_000)
        # polled from here: the pages' CSP (no eval) rules out wait_for_function's predicates
        wait_until(lambda: int(page.inner_text("[data-cell='frames.rear']")) > 60)
        assert page.inner_text("[data-cell=belt]") == "1.20"
        assert page.locator("figure.camera").count() == 4
        assert page.locator("figure[data-view=rear] line.bone.left").count() >= 5  # a stick figure, left side drawn
        wait_until(lambda: page.locator("figure.camera[data-keeping-up=yes]").count() == 4)
        assert page.evaluate("window.__samePage") is True  # updated in place, never reloaded
        assert int(page.get_attribute("#live-panel", "data-updates")) >= 2
        page.screenshot(path=str(screenshot_dir / "live-800x1280.png"))
        wait_until(lambda: bool(done), timeout_s=60)
        truth = done[0]  # the walker's true heel strikes, all frames now in
        for side in ("left", "right"):
            # complete strides between heel strikes settled 0.6 s; Zeni's candidates come 0–60 ms
            # early (one more may have settled), and one in the first frames has no peak before it
            cutoff_s = LIVE_WALK_S - 1 / 60 - 0.6
            settled, early = (int(np.sum(truth[side] <= cutoff_s + lead)) for lead in (0.0, 0.06))
            cell = f"[data-cell='strides.{side}']"
            wait_until(lambda: page.inner_text(cell).isdigit() and int(page.inner_text(cell)) >= settled - 2)
            assert settled - 2 <= int(page.inner_text(cell)) <= early - 1, side
        release.set()
        page.wait_for_url(re.compile(r"/sessions/\d+$"), timeout=90_000)  # the report replaces it by itself
    finally:
        release.set()
        coordinator.join(120)
    sid = done[-1]
    assert page.url.endswith(f"/sessions/{sid}")
    assert page.locator("h1").inner_text().startswith(f"Session {sid}")


@pytest.mark.parametrize("view", ["left", "right"])
def test_live_stride_counter_counts_every_true_heel_strike_as_frames_arrive(view):
    """30 s of the simulated walker fed half a second at a time: every true heel strike of
    either foot is counted once, none twice, each 0–60 ms early: Zeni's candidate (the heel's
    most forward point) leads contact on real feet and on the walker calibrated to them."""
    import numpy as np

    from rig.sim.walker import SimulatedWalker
    from rig.web.live_strides import LiveStrideCounter
    walker = SimulatedWalker(WalkerParams(noise_px=2.0), fps=60.0, seed=4)
    n = walker.n_frames(30.0)
    lm = walker.landmarks(view, np.arange(n))
    counter = LiveStrideCounter(walker.header(view).facing)
    for i in range(n):
        counter.add(i / 60.0, lm[i])
        if i % 30 == 29:
            counter.update()
    truth = walker.truth(0.0, n / 60.0).heel_strike_s
    for side in ("left", "right"):
        expected = truth[side][truth[side] <= (n - 1) / 60.0 - 0.6]
        got = np.array(counter.heel_strikes_s[side])
        assert len(got) == len(expected) >= 20
        lead_s = expected - got
        assert lead_s.min() > 0.0 and lead_s.max() < 0.06, lead_s
    assert counter.strides == {s: len(counter.heel_strikes_s[s]) - 1 for s in ("left", "right")}


@pytest.mark.parametrize("target, followed", [
    ("/patients/3", True), ("/compare?a=1&b=2", True), ("//evil.example/", False), ("https://evil.example/", False),
    ("/\t/evil.example/", False), ("/\\evil.example", False), ("/ok\n", False), ("", False), (None, False)])
def test_only_a_local_path_is_followed_after_logging_in(target, followed):
    from rig.web.auth import safe_next
    assert safe_next(target, "/home") == (target if followed else "/home")


def test_pages_cannot_be_framed_cached_or_load_foreign_content(rig):
    cookie = login_cookie(rig.url, "carol")
    for path, who in (("/login", None), ("/", cookie), ("/api/sessions", cookie), ("/nowhere", None)):
        req = urllib.request.Request(rig.url + path, headers={"Cookie": who} if who else {})
        try:
            headers = urllib.request.build_opener(_NoRedirectHandler).open(req, timeout=10).headers
        except urllib.error.HTTPError as e:
            headers = e.headers
        assert headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff", path


def test_find_matches_names_in_any_case_and_script(tmp_path):
    records = Records(ClinicStore(tmp_path / "c.sqlite"))
    for name, cid in (("Zofia Łukasiewicz", "K-1"), ("Émile Zola", "K-2"), ("Ann 100% Smith", None)):
        records.create(PatientFields.parse(name, "", cid or "", ""), "test")
    assert [p.name for p in records.find("łUKAS")] == ["Zofia Łukasiewicz"]
    assert [p.name for p in records.find("émile")] == ["Émile Zola"]
    assert [p.name for p in records.find("k-2")] == ["Émile Zola"]
    assert [p.name for p in records.find("100%")] == ["Ann 100% Smith"]
    assert len(records.find("")) == 3 and records.find("nobody") == []
