"""Before/after comparisons that do not cry wolf: the same walk recorded again with fresh
measurement error is not "changed", a known change is, a change below the MDC is not, and
the left/right step times of one walk do not flip between recordings.

Recordings come from ``rig.sim.rerecord`` (60 fps, four views, 2 px landmark noise, 2 %
dropped frames, 2 % side-view label swaps): the simulated walker, and the real treadmill
walk of the validation set (one plate-referenced stride looped to the session length).
Walker walks and measurement-error draws differ from those the repeatability table
(``benchmarks/bench_repeatability.py``) was made from, so the MDC is tested out of sample.
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
from scipy.stats import chi2

from rig.gait import compare_reports
from rig.gait.compare import CANNOT_TELL, CHANGED, NO_CHANGE, benjamini_hochberg
from rig.gait.events import EventList
from rig.gait.repeatability import MDC_PATH, Repeatability, load_sem, mdc95
from rig.gait.views import SessionWeightFusion
from rig.sim import rerecord
from rig.validation import RealTrial, Reference

DRAWS = 20
REPS = 10
ROOT = Path(__file__).resolve().parent.parent
BASE_SEED, CHANGED_SEED = 300, 400  # walks of the detection test (baseline i vs changed i)
REAL_DRAW0 = 100  # the table used draws 0..19 of the real walks


@lru_cache(maxsize=None)
def walker(walk_key: tuple, walk_seed: int, draw: int) -> dict:
    return rerecord.walker_report(dict(walk_key), walk_seed, draw)


@lru_cache(maxsize=None)
def redrawn(walk: str) -> list[dict]:
    if walk == "walker":
        return [walker((), 7, d) for d in range(DRAWS)]
    pytest.importorskip("rig.validation")
    return [rerecord.real_report(walk, REAL_DRAW0 + d)[0] for d in range(DRAWS)]


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


def test_sem_is_the_upper_bound_of_the_pooled_within_walk_sd_of_the_harder_source():
    recs = {"a": [{"x": v} for v in (1.0, 3.0, 2.0, 2.0, 2.0)], "b": [{"x": v} for v in (10.0, 10.0, 10.0, 12.0, 8.0)],
            "c": [{"x": v} for v in (5.0, 5.5, 5.0, 5.0, 4.5)]}
    rep = Repeatability().fit(recs)
    # within-walk sums of squares 2, 8 and 0.5 over 4 + 4 + 4 degrees of freedom
    assert rep.sem_by_source_["x"] == pytest.approx({"": math.sqrt(10.5 / 12)})
    assert rep.sem_["x"] == pytest.approx(math.sqrt(10.5 / chi2.ppf(0.05, 12)))
    assert rep.mdc95_["x"] == pytest.approx(1.959964 * math.sqrt(2) * rep.sem_["x"])
    assert rep.n_["x"] == 15
    by_source = Repeatability().fit(recs, {"a": "walker", "c": "walker", "b": "real"})
    assert by_source.sem_by_source_["x"] == pytest.approx({"walker": math.sqrt(2.5 / 8), "real": math.sqrt(8 / 4)})
    assert by_source.sem_["x"] == pytest.approx(math.sqrt(8 / chi2.ppf(0.05, 4)))


def test_shipped_table_covers_every_measure_under_the_tests_conditions():
    table = json.loads(MDC_PATH.read_text())
    assert table["measurement_error"] == rerecord.MEASUREMENT_ERROR and table["fps"] == rerecord.FPS
    sem = load_sem()
    rows = compare_reports(redrawn("walker")[0], redrawn("walker")[1])["measures"]
    for r in rows:
        key = f"{r['measure']}.{r['side']}" if r["side"] else r["measure"]
        assert r["sem"] == pytest.approx(sem[key]) and r["mdc95"] == pytest.approx(mdc95(sem[key]))
    assert (ROOT / "docs" / "repeatability.md").read_text().count("| `") == len(rows)


def test_one_weight_per_view_for_the_whole_session():
    k = np.arange(30.0)
    jitter = np.random.default_rng(0).normal(0.0, 0.01, 30)
    w_near = np.where(k % 2 == 0, 2.0, 6.0)  # per-event weights that change from event to event
    w_far = np.where(k % 3 == 0, 0.5, 1.0)
    near = EventList(k + 0.0005, w_near, ["left"] * 30)
    far = EventList(k + jitter, w_far, ["right"] * 30)
    fusion = SessionWeightFusion()
    fused = fusion.fuse({"left": near, "right": far}, 0.2)
    assert fusion.weight_ == {"left": 4.0, "right": 1.0}  # the medians
    assert fused.time_s == pytest.approx(k + (4.0 * 0.0005 + 1.0 * jitter) / 5.0)  # the same mix for every event
    only_near = fusion.fuse({"left": near, "right": EventList.empty()}, 0.2)
    assert only_near.time_s == pytest.approx(k + 0.0005)


def test_a_real_stride_looped_to_a_session():
    t = np.arange(0, 2.5, 0.01)
    x = np.column_stack([np.sin(2 * np.pi * t / 1.2), np.zeros_like(t), np.zeros_like(t)])
    drift = np.column_stack([0.01 * t, np.zeros_like(t), np.zeros_like(t)])  # 1 cm/s the loop must remove
    ref = Reference({"right": np.array([0.1, 1.3]), "left": np.array([0.7, 1.9])},
                    {"right": np.array([0.85]), "left": np.array([0.25, 1.45])}, "test")
    trial = RealTrial("t", "", "", "treadmill", 100.0, t, {("right", "heel"): x + drift}, 1.0, ref)
    out = rerecord.looped(trial, 10.0)
    assert out.duration_s >= 10.0 - 1.2 and np.all(np.diff(out.t_s) > 0)
    assert out.reference.ic_s["right"] == pytest.approx(1.2 * np.arange(9))
    assert out.reference.ic_s["left"] == pytest.approx(0.6 + 1.2 * np.arange(9))
    assert out.reference.fo_s["left"] == pytest.approx(0.15 + 1.2 * np.arange(9))  # 1.45 is the next cycle's
    heel = out.markers[("right", "heel")]
    n = int(np.sum(out.t_s < 1.2))
    assert heel[n:2 * n] == pytest.approx(heel[:n])  # every cycle the same, the drift ramp removed
    assert np.abs(heel[n] - heel[n - 1]).max() < 0.06  # no jump where the cycles join


# --- the same walk, re-recorded -------------------------------------------------------------
@pytest.mark.parametrize("walk", ["walker", "treadmill"])
def test_same_walk_redrawn_20_times_is_not_changed(walk):
    rate, per, pairs = false_positive_rates(redrawn(walk))
    print(f"\n{walk}: pairs with any measure changed {rate:.1%}; per measure {per.most_common(4)} of {pairs}")
    assert pairs == 190
    assert rate <= 0.05, (rate, per.most_common(5))
    assert max(per.values(), default=0) <= 0.05 * pairs, per.most_common(5)


@pytest.mark.parametrize("walk", ["walker", "treadmill"])
def test_step_time_asymmetry_of_one_walk_is_stable_and_reported(walk):
    reps = redrawn(walk)
    asym = [r["spatiotemporal"]["step_time_s"]["right"] - r["spatiotemporal"]["step_time_s"]["left"] for r in reps]
    print(f"\n{walk}: step-time asymmetry (R - L) SD over {DRAWS} draws {np.std(asym, ddof=1) * 1000:.1f} ms")
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
    print(f"\n{name}: changed with the right sign in {hits}/{REPS}")
    assert hits >= 0.9 * REPS, f"{name}: {hits}/{REPS}"


def test_change_below_the_mdc_is_no_change_detected():
    sem = load_sem()["rearfoot_eversion_2d_deg.left"]
    knobs = (("rearfoot_eversion_left_deg", 4.0 - 0.4 * mdc95(sem)),)
    verdicts = [row(compare_reports(walker(BASE, BASE_SEED + i, 0), walker(knobs, CHANGED_SEED + i, 0)),
                    "rearfoot_eversion_2d_deg", "left")["verdict"] for i in range(REPS)]
    print(f"\nrearfoot eversion -{0.4 * mdc95(sem):.2f} deg (0.4 MDC): no change detected in {verdicts.count(NO_CHANGE)}/{REPS}")
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
