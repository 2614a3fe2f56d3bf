"""Gait engine against the simulated walker's ground truth (rig/gait)."""
from __future__ import annotations

import numpy as np
import pytest

from rig.gait import GaitInputError, analyze_tracks, compare_reports
from rig.gait._signals import LabelSwapRepair
from rig.gait.spatiotemporal import symmetry_index_pct
from rig.sim.walker import SimulatedWalker, WalkerParams

ART = dict(noise_px=2.0, missing_fraction=0.05, swap_fraction=0.05)
VIEWS = ("left", "right", "rear", "front")


def run(fps=60.0, duration=30.0, seed=2, views=VIEWS, **kw):
    w = SimulatedWalker(WalkerParams(**kw), fps=fps, seed=seed)
    rep = analyze_tracks({v: w.track(v, duration) for v in views}, w.params.belt_speed_m_s).to_dict()
    return w, rep, duration


def event_errors(rep, truth):
    errs = []
    for s in ("left", "right"):
        for k in ("heel_strike_s", "toe_off_s"):
            est = np.array(rep["events"][s][k], float)
            for x in getattr(truth, k)[s]:
                errs.append(np.min(np.abs(est - x)) if len(est) else np.inf)
    return np.array(errs)


GRID = [
    (60, dict()), (60, dict(cadence_steps_per_min=80, belt_speed_m_s=0.6)),
    (60, dict(cadence_steps_per_min=140, belt_speed_m_s=1.8)),
    (60, dict(stance_pct_asymmetry=8.0)), (60, dict(step_time_asymmetry_pct=10.0)),
    (60, dict(rearfoot_eversion_left_deg=12.0, pelvic_drop_right_deg=8.0, pelvic_obliquity_deg=3.0)),
    (30, dict()), (120, dict(cadence_steps_per_min=125, belt_speed_m_s=1.5)),
]


@pytest.mark.parametrize("fps,kw", GRID, ids=[f"{f}fps-" + "-".join(f"{k}={v}" for k, v in kw.items()) for f, kw in GRID])
def test_goals_on_grid_with_artefacts(fps, kw):
    w, rep, dur = run(fps=fps, **ART, **kw)
    truth_ev = w.truth(0.5, dur - 0.5)
    e = event_errors(rep, truth_ev)
    assert np.mean(e <= 1 / 60) >= 0.95
    assert np.mean(e <= 1 / fps) >= 0.90
    tr = w.truth(0.0, dur)
    sp = rep["spatiotemporal"]
    assert abs(sp["cadence_steps_per_min"] / tr.cadence_steps_per_min - 1) <= 0.01
    for s in ("left", "right"):
        assert abs(sp["stance_pct"][s] - tr.stance_pct[s]) <= 2.0
        assert abs(sp["step_time_s"][s] - tr.step_time_s[s]) <= 0.010
    assert abs(sp["double_support_pct"] - tr.double_support_pct) <= 3.0
    assert rep["cycles_used"]["left"] >= 0.8 * tr.n_strides["left"]


def test_clean_data_events_within_one_120fps_frame():
    w, rep, dur = run(fps=120, duration=20)
    e = event_errors(rep, w.truth(0.5, dur - 0.5))
    assert np.all(e <= 1 / 120)  # onset-shape bias only: within one 120 fps frame


def test_clean_data_events_are_timed_within_a_quarter_of_a_30fps_frame():
    """Crossing times are sub-frame (interpolated between frames), not frame indices: on
    clean 30 fps data a frame-snapped event would be off by up to half a frame (16.7 ms)."""
    w, rep, dur = run(fps=30, duration=20)
    e = event_errors(rep, w.truth(0.5, dur - 0.5))
    assert len(e) >= 60 and np.all(e <= 0.25 / 30)


def test_label_swap_repair_finds_every_swapped_frame():
    w = SimulatedWalker(WalkerParams(**ART), fps=60, seed=4)
    for view in ("left", "right"):
        tr = w.track(view, 20)
        rep = LabelSwapRepair(view).fit(tr.lm)
        truth = w.swapped(view, tr.index) & tr.found
        np.testing.assert_array_equal(rep.swapped_, truth)


def test_limp_is_found_with_its_spread_and_symmetry_index_sign():
    w, rep, dur = run(duration=40, stance_pct_asymmetry=14.0, **ART)
    si = rep["spatiotemporal"]["symmetry_index_pct"]["stance_pct"]
    tr = w.truth(0, dur)
    assert abs(si - tr.symmetry_index_pct["stance_pct"]) < 2.0
    f = [x for x in rep["findings"] if x["code"] == "asymmetry" and x["measure"] == "stance_pct"]
    assert f and f[0]["level"] == "present" and f[0]["ci95"][0] > 10
    # a symmetric walker gets no asymmetry finding
    _, rep0, _ = run(duration=40, **ART)
    assert not [x for x in rep0["findings"] if x["code"] == "asymmetry"]


def test_frontal_measures_and_findings():
    w, rep, _ = run(duration=30, rearfoot_eversion_left_deg=12.0, pelvic_obliquity_deg=4.0, **ART)
    fs = rep["kinematics"]["frontal_summary"]
    assert abs(fs["rearfoot_eversion_2d_deg"]["left"]["mean"] - 12.0) < 0.5
    assert abs(fs["rearfoot_eversion_2d_deg"]["right"]["mean"] - 4.0) < 0.5
    assert abs(fs["pelvic_obliquity_2d_deg"]["mean"] - 4.0) < 0.8
    codes = {(f["code"], f.get("side")) for f in rep["findings"]}
    assert ("excessive_rearfoot_eversion", "left") in codes
    assert ("excessive_rearfoot_eversion", "right") not in codes
    assert ("pelvic_obliquity", None) in codes
    sag = rep["kinematics"]["sagittal"]["knee_flexion_2d_deg"]["left"]
    assert len(sag["mean"]) == 101 and 55 < max(sag["mean"]) < 80  # ~69° peak in swing
    assert all("2D" in lab for lab in rep["kinematics"]["labels"].values())


def test_static_evaluation_from_standing_capture():
    w, rep, _ = run(duration=10, standing=True, rearfoot_eversion_left_deg=7.0, rearfoot_eversion_right_deg=2.0,
                    pelvic_obliquity_deg=3.0, noise_px=1.0)
    assert rep["mode"] == "standing"
    assert rep["events"]["left"]["heel_strike_s"] == [] and rep["events"]["right"]["heel_strike_s"] == []
    assert rep["spatiotemporal"]["cadence_steps_per_min"] is None
    v = rep["static"]["values"]
    assert abs(v["rearfoot_eversion_2d_deg"]["left"]["median"] - 7.0) < 0.5
    assert abs(v["rearfoot_eversion_2d_deg"]["right"]["median"] - 2.0) < 0.5
    assert abs(v["pelvic_obliquity_2d_deg"]["median"] - 3.0) < 0.5
    assert "spatiotemporal" in rep["unavailable"]


def test_orthotic_comparison_needs_the_spread():
    _, a, _ = run(duration=30, seed=1, rearfoot_eversion_left_deg=9.0, **ART)
    _, b, _ = run(duration=30, seed=2, rearfoot_eversion_left_deg=7.0, **ART)
    c = compare_reports(a, b)
    row = next(r for r in c["measures"] if r["measure"] == "rearfoot_eversion_2d_deg" and r["side"] == "left")
    assert row["changed"] and row["ci"][0] < -2.0 < row["ci"][1]
    row_r = next(r for r in c["measures"] if r["measure"] == "rearfoot_eversion_2d_deg" and r["side"] == "right")
    assert row_r["ci"][0] < 0.5 and row_r["ci"][1] > -0.5


def test_single_side_view_still_gives_events():
    w, rep, dur = run(duration=30, views=("left",), **ART)
    e = event_errors(rep, w.truth(0.5, dur - 0.5))
    assert np.mean(e <= 1 / 60) >= 0.90
    assert "kinematics.frontal.rearfoot_eversion_2d_deg" in rep["unavailable"]


def test_too_short_and_nobody_say_why():
    w, rep, _ = run(duration=1.2, **ART)
    assert rep["cycles_used"]["left"] < 2
    assert any(k.startswith("cycles") or k.startswith("events") for k in rep["unavailable"])
    w = SimulatedWalker(WalkerParams(), fps=60, seed=1)
    tr = w.track("left", 5)
    tr.lm[:] = np.nan
    rep = analyze_tracks({"left": tr}, 1.2).to_dict()
    assert rep["events"]["left"]["heel_strike_s"] == [] and "views.left" in rep["unavailable"]
    assert rep["spatiotemporal"]["cadence_steps_per_min"] is None


def test_different_frame_rates_are_refused():
    a = SimulatedWalker(WalkerParams(), fps=60).track("left", 3)
    b = SimulatedWalker(WalkerParams(), fps=30).track("rear", 3)
    with pytest.raises(GaitInputError, match="different frame rates"):
        analyze_tracks({"left": a, "rear": b}, 1.2)


def test_symmetry_index_definition():
    assert symmetry_index_pct(1.1, 0.9) == pytest.approx(20.0)
    assert np.isnan(symmetry_index_pct(0.0, 0.0))


# Corners of the grid: every frame rate × the extreme paces (steps/min, m/s), with
# all artefacts, 30 s captures. Regression: at 30 fps and 140 steps/min a third of the heel
# strikes were dropped in every view alike (the fit window, fixed in seconds, held fewer
# frames than the fit requires), and heel strikes were ~5-10 ms late (onset shape β = 2).
CORNER_PACES = [(80, 0.6), (110, 1.2), (140, 1.8), (140, 1.2), (80, 1.0)]
CORNERS = [(fps, c, v) for fps in (30, 60, 120) for c, v in CORNER_PACES]


@pytest.mark.parametrize("fps,cadence,belt", CORNERS, ids=[f"{f}fps-{c}/{v}" for f, c, v in CORNERS])
def test_goals_on_grid_corners(fps, cadence, belt):
    w, rep, dur = run(fps=fps, cadence_steps_per_min=cadence, belt_speed_m_s=belt, **ART)
    truth_ev = w.truth(0.5, dur - 0.5)
    e = event_errors(rep, truth_ev)
    assert np.mean(e <= 1 / fps + 1e-9) >= 0.95  # one frame of this rate
    assert np.mean(e <= 1 / 60) >= 0.95  # and one 60 fps frame
    for s in ("left", "right"):  # no foot loses its events
        for k in ("heel_strike_s", "toe_off_s"):
            est = np.array(rep["events"][s][k], float)
            found = [len(est) and np.min(np.abs(est - x)) <= 1 / fps + 1e-9 for x in getattr(truth_ev, k)[s]]
            assert np.mean(found) >= 0.9, f"{s} {k}: {np.mean(found):.0%}"
    tr = w.truth(0.0, dur)
    sp = rep["spatiotemporal"]
    assert abs(sp["cadence_steps_per_min"] / tr.cadence_steps_per_min - 1) <= 0.01
    for s in ("left", "right"):
        assert abs(sp["stance_pct"][s] - tr.stance_pct[s]) <= 2.0
        assert abs(sp["step_time_s"][s] - tr.step_time_s[s]) <= 0.010
    assert rep["cycles_used"]["left"] >= 0.8 * tr.n_strides["left"]
    assert rep["cycles_used"]["right"] >= 0.8 * tr.n_strides["right"]
