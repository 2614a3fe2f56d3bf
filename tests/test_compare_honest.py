"""Before/after comparisons that do not cry wolf: the same walk recorded again with fresh
measurement error is not "changed", a known change is, a change below the MDC is not, and
the left/right step times of one walk do not flip between recordings.

Recordings come from ``rig.sim.rerecord`` (60 fps, four views, 2 px landmark noise, 2 %
dropped frames, 2 % side-view label swaps) with walk seeds the repeatability table
(``benchmarks/bench_repeatability.py``) did not use, so the MDC is tested out of sample.
"""
from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from rig.gait import compare_reports
from rig.gait.compare import CANNOT_TELL, CHANGED, NO_CHANGE, benjamini_hochberg
from rig.gait.repeatability import MDC_PATH, Repeatability, load_sem, mdc95
from rig.sim import rerecord

DRAWS = 20
REPS = 10
ROOT = Path(__file__).resolve().parent.parent
BASE_SEED, CHANGED_SEED = 300, 400  # walks of the detection test (baseline i vs changed i)


@lru_cache(maxsize=None)
def walker(walk_key: tuple, walk_seed: int, draw: int) -> dict:
    return rerecord.walker_report(dict(walk_key), walk_seed, draw)


def redrawn_walker() -> list[dict]:
    return [walker((), 7, d) for d in range(DRAWS)]


def false_positive_rates(reports: list[dict]) -> tuple[float, Counter, int]:
    """Share of pairs with any measure changed, changed count per measure, pairs."""
    per, any_changed, pairs = Counter(), 0, 0
    for a, b in itertools.combinations(reports, 2):
        rows = compare_reports(a, b)["measures"]
        hit = [f"{r['measure']}.{r['side']}" for r in rows if r["verdict"] == CHANGED]
        any_changed += bool(hit)
        per.update(hit)
        pairs += 1
    return any_changed / pairs, per, pairs


def row(c: dict, measure: str, side: str | None = None) -> dict:
    return next(r for r in c["measures"] if r["measure"] == measure and r["side"] == side)


# --- the statistics ------------------------------------------------------------------------
def test_benjamini_hochberg_step_up():
    # q = 0.05, m = 4: thresholds 0.0125, 0.025, 0.0375, 0.05; the largest p under its
    # threshold is the third (0.03 <= 0.0375), so the three smallest are rejected
    assert benjamini_hochberg([0.03, 0.001, 0.2, 0.02], 0.05) == [True, True, False, True]
    assert benjamini_hochberg([0.04, 0.3], 0.05) == [False, False]
    assert benjamini_hochberg([], 0.05) == []


def test_sem_is_the_pooled_within_walk_sd():
    recs = {"a": [{"x": v} for v in (1.0, 3.0, 2.0, 2.0, 2.0)], "b": [{"x": v} for v in (10.0, 10.0, 10.0, 12.0, 8.0)]}
    rep = Repeatability().fit(recs)
    # within-walk sums of squares 2 and 8 over 4 + 4 degrees of freedom
    assert rep.sem_["x"] == pytest.approx(math.sqrt(10 / 8))
    assert rep.mdc95_["x"] == pytest.approx(1.959964 * math.sqrt(2) * math.sqrt(10 / 8))
    assert rep.n_["x"] == 10


def test_shipped_table_covers_every_measure_under_the_tests_conditions():
    table = json.loads(MDC_PATH.read_text())
    assert table["measurement_error"] == rerecord.MEASUREMENT_ERROR and table["fps"] == rerecord.FPS
    sem = load_sem()
    rows = compare_reports(redrawn_walker()[0], redrawn_walker()[1])["measures"]
    for r in rows:
        key = f"{r['measure']}.{r['side']}" if r["side"] else r["measure"]
        assert r["sem"] == pytest.approx(sem[key]) and r["mdc95"] == pytest.approx(mdc95(sem[key]))
    assert (ROOT / "docs" / "repeatability.md").read_text().count("| `") == len(rows)


# --- the same walk, re-recorded -------------------------------------------------------------
def test_same_walker_walk_redrawn_20_times_is_not_changed():
    rate, per, pairs = false_positive_rates(redrawn_walker())
    assert pairs == 190
    assert rate <= 0.05, (rate, per.most_common(5))
    assert max(per.values(), default=0) <= 0.05 * pairs, per.most_common(5)


def test_step_time_asymmetry_of_one_walk_is_stable_and_reported():
    reps = redrawn_walker()
    asym = [r["spatiotemporal"]["step_time_s"]["right"] - r["spatiotemporal"]["step_time_s"]["left"] for r in reps]
    assert np.std(asym, ddof=1) <= 0.005, np.round(asym, 4)
    c = compare_reports(reps[0], reps[1])
    for side in ("left", "right"):
        r = row(c, "step_time_s", side)
        assert 0 < r["sem"] < 0.005 and r["ci"][0] < r["difference"] < r["ci"][1]


# --- known changes ----------------------------------------------------------------------------
BASE = ()
CHANGES = {  # walker knobs of the changed session, the measure that must change, its sign
    "cadence +5 %": ((("cadence_steps_per_min", 115.5),), ("cadence_steps_per_min", None), +1),
    "stance +3 points right": ((("stance_pct", 63.5), ("stance_pct_asymmetry", 3.0)), ("stance_pct", "right"), +1),
    "rearfoot eversion -3 deg left": ((("rearfoot_eversion_left_deg", 1.0),), ("rearfoot_eversion_2d_deg", "left"), -1),
    "step-length asymmetry 8 %": ((("step_time_asymmetry_pct", 8.0),), ("step_length_symmetry_index_pct", None), +1),
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_known_change_is_marked_changed_with_its_sign(name):
    knobs, (measure, side), sign = CHANGES[name]
    hits = 0
    for i in range(REPS):
        c = compare_reports(walker(BASE, BASE_SEED + i, 0), walker(knobs, CHANGED_SEED + i, 0))
        r = row(c, measure, side)
        hits += r["verdict"] == CHANGED and np.sign(r["difference"]) == sign
    assert hits >= 0.9 * REPS, f"{name}: {hits}/{REPS}"


def test_change_below_the_mdc_is_no_change_detected():
    sem = load_sem()["rearfoot_eversion_2d_deg.left"]
    knobs = (("rearfoot_eversion_left_deg", 4.0 - 0.4 * mdc95(sem)),)
    verdicts = [row(compare_reports(walker(BASE, BASE_SEED + i, 0), walker(knobs, CHANGED_SEED + i, 0)),
                    "rearfoot_eversion_2d_deg", "left")["verdict"] for i in range(REPS)]
    assert verdicts.count(NO_CHANGE) >= 0.9 * REPS, verdicts


def test_too_few_strides_cannot_tell():
    a = walker(BASE, BASE_SEED, 0)
    short = json.loads(json.dumps(a))
    for side in ("left", "right"):
        short["per_stride"][side] = {k: v[:3] for k, v in short["per_stride"][side].items()}
    c = compare_reports(a, short)
    r = row(c, "stance_pct", "left")
    assert r["verdict"] == CANNOT_TELL and r["changed"] is None and "at least 4 strides" in r["reason"]


# --- the command line says the same ------------------------------------------------------------
def test_cli_compare_prints_difference_interval_mdc_and_verdict(tmp_path):
    a, b = walker(BASE, BASE_SEED, 0), walker(CHANGES["cadence +5 %"][0], CHANGED_SEED, 0)
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    run = [sys.executable, "-m", "rig.cli", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    text = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    js = subprocess.run(run + ["--json"], capture_output=True, text=True, cwd=ROOT)
    assert text.returncode == 0 and js.returncode == 0, text.stderr + js.stderr
    expected = compare_reports(a, b, names=(str(tmp_path / "a.json"), str(tmp_path / "b.json")))
    assert json.loads(js.stdout) == json.loads(json.dumps(expected))
    line = next(x for x in text.stdout.splitlines() if x.strip().startswith("cadence_steps_per_min"))
    r = row(expected, "cadence_steps_per_min")
    assert f"{r['difference']:+.3g}" in line and f"{r['mdc95']:.3g}" in line and line.endswith("changed")
    assert "MDC95" in text.stdout
