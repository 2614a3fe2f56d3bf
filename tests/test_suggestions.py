"""Decision support (rig.gait.suggestions): foot type, shoe category and heel lift from known
rearfoot and pelvic numbers, "cannot tell" whenever the confidence interval straddles a
threshold, and the same suggestions on the report page (real Chromium) and in its PDF."""
from __future__ import annotations

import json

import pytest
from pypdf import PdfReader
from test_web import Tablet, rig  # noqa: F401

from rig.gait.suggestions import foot_type, heel_lift, shoe, suggestions


def _side(mean: float, lo: float, hi: float, n: int = 12) -> dict:
    return {"mean": mean, "sd": 1.0, "n": n, "ci": [lo, hi]}


@pytest.mark.parametrize("mean, lo, hi, answer, category", [
    (4.0, 3.1, 4.9, "neutral", "neutral"),
    (0.5, -0.4, 1.4, "supinated", "neutral-cushioned"),
    (9.5, 8.6, 10.4, "pronated", "stability"),
    (14.0, 12.5, 15.5, "markedly pronated", "motion control"),
])
def test_foot_type_and_shoe_when_the_whole_interval_lies_in_one_class(mean, lo, hi, answer, category):
    foot = foot_type("left", _side(mean, lo, hi))
    assert (foot.answer, foot.certain) == (answer, True)
    assert f"{mean:.1f}°" in foot.text and f"95 % CI {lo:.1f} to {hi:.1f}°" in foot.text and "12 strides" in foot.text
    assert shoe("left", foot).answer == category


@pytest.mark.parametrize("lo, hi, between, shoes", [
    (7.1, 9.9, ("neutral", "pronated"), ("neutral", "stability")),
    (1.5, 2.6, ("supinated", "neutral"), ("neutral-cushioned", "neutral")),
    (6.0, 13.0, ("neutral", "pronated", "markedly pronated"), ("neutral", "stability", "motion control")),
])
def test_an_interval_across_a_threshold_cannot_tell_and_names_both_sides(lo, hi, between, shoes):
    foot = foot_type("right", _side((lo + hi) / 2, lo, hi))
    assert (foot.answer, foot.certain, foot.options) == ("cannot tell", False, between)
    assert "straddles a threshold" in foot.text
    s = shoe("right", foot)
    assert (s.answer, s.options) == ("cannot tell", shoes)


def test_too_few_strides_or_no_interval_give_no_foot_type():
    assert foot_type("left", _side(10.0, 9.5, 10.5, n=3)).answer == "cannot tell"
    assert "3 strides are too few" in foot_type("left", _side(10.0, 9.5, 10.5, n=3)).text
    assert foot_type("left", {"mean": 10.0, "n": 10, "ci": None}).answer == "cannot tell"
    assert foot_type("left", {"mean": None}).answer == "cannot tell"


@pytest.mark.parametrize("mean, lo, hi, answer, side", [
    (3.0, 2.4, 3.6, "consider a right heel lift", "right"),  # left hip higher: right leg short
    (-3.0, -3.7, -2.3, "consider a left heel lift", "left"),
    (0.4, -0.3, 1.1, "not indicated", None),
    (2.2, 1.5, 2.9, "cannot tell", "right"),
])
def test_heel_lift_from_pelvic_obliquity(mean, lo, hi, answer, side):
    s = heel_lift({"mean": mean, "sd": 1.0, "n": 20, "ci": [lo, hi]})
    assert (s.answer, s.side) == (answer, side)
    if answer.startswith("consider"):
        assert "about 10 mm" in s.text and "Measure the leg lengths" in s.text  # 0.2 m × tan 3° = 10.5 mm


def test_a_report_without_frontal_views_gives_no_suggestions():
    assert suggestions({}) == []
    assert suggestions({"kinematics": {"frontal_summary": {}}}) == []


def test_the_report_page_and_pdf_show_the_suggestions_of_the_pronated_walk(rig, browser, tmp_path, screenshot_dir):
    """The fixture's pronated session walked with 12° left rearfoot eversion, 4° right."""
    report = json.loads(rig.storage.report(rig.pronated)[0])
    expected = suggestions(report)
    left = next(s for s in expected if s.kind == "foot_type" and s.side == "left")
    right = next(s for s in expected if s.kind == "foot_type" and s.side == "right")
    assert left.answer in ("pronated", "markedly pronated", "cannot tell") and right.answer == "neutral"
    tablet = Tablet(browser, rig.url).login("carol")
    try:
        page = tablet.page
        page.goto(f"{rig.url}/sessions/{rig.pronated}")
        items = page.locator("#suggestions li.suggestion")
        assert items.count() == len(expected) == 5  # foot + shoe per side, heel lift
        for s in expected:
            li = page.locator(f"#suggestions li[data-kind={s.kind}][data-side={s.side or 'both'}]")
            assert li.get_attribute("data-answer") == s.answer
            assert " ".join(li.locator(".finding-text").inner_text().split()) == " ".join(s.text.split())
        page.locator("#suggestions").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / "suggestions-800x1280.png"))
        with page.expect_download() as dl:
            page.click("#downloads a[href$='report.pdf']")
        path = tmp_path / "r.pdf"
        dl.value.save_as(path)
        text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(path).pages)
        assert "Suggestions (the clinician decides)" in text
        for s in expected:
            assert " ".join(s.text.split()) in text
    finally:
        tablet.close()
