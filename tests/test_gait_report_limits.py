"""Reports say what they cannot know (rig.gait.report, findings, spatiotemporal): no mean,
symmetry index or finding from too few strides, no angle a human joint cannot make."""
from __future__ import annotations

import numpy as np
from conftest import assets_or_skip

from edge_models.registry import VALIDATION
from rig.gait import analyze_tracks
from rig.sim.walker import SimulatedWalker, WalkerParams
from rig.validation import load_trial, render_tracks

VIEWS = ("left", "right", "rear", "front")


def walker_report(duration_s, transform=None, **kw):
    w = SimulatedWalker(WalkerParams(**kw), fps=60.0, seed=3)
    tracks = {v: w.track(v, duration_s) for v in VIEWS}
    if transform:
        transform(tracks)
    return analyze_tracks(tracks, w.params.belt_speed_m_s).to_dict()


def test_one_stride_per_side_gives_no_stance_and_no_symmetry_but_says_why():
    assets_or_skip(VALIDATION)
    tracks, ref = render_tracks(load_trial("treadmill"), 60.0, 1.5, 0)  # 2.4 s: one stride a side
    rep = analyze_tracks(tracks, ref.belt_speed_m_s).to_dict()
    sp, un = rep["spatiotemporal"], rep["unavailable"]
    for side in ("left", "right"):
        assert sp["stance_pct"][side] is None
        assert "only one" in un[f"spatiotemporal.stance_pct.{side}"] or "no accepted" in un[f"spatiotemporal.stance_pct.{side}"]
    assert sp["symmetry_index_pct"]["stance_pct"] is None
    assert "at least 2 strides" in un["spatiotemporal.symmetry_index.stance_pct"]
    assert rep["findings"] == []


def test_a_frontal_finding_needs_enough_strides():
    long = walker_report(20.0, rearfoot_eversion_left_deg=16.0)
    assert [f["level"] for f in long["findings"] if f["code"] == "excessive_rearfoot_eversion"] == ["present"]
    short = walker_report(3.0, rearfoot_eversion_left_deg=16.0)  # two strides a side at most
    assert not [f for f in short["findings"] if f["code"] == "excessive_rearfoot_eversion"]
    assert "too few strides" in short["unavailable"]["findings.rearfoot_eversion.left"]


def test_an_impossible_angle_is_a_measurement_problem_not_a_value():
    def heel_on_the_wrong_body_part(tracks):
        lm = tracks["rear"].lm
        lm[:, 29, 0] = lm[:, 27, 0] + 3.0 * (lm[:, 29, 1] - lm[:, 27, 1])  # left heel far out sideways

    rep = walker_report(20.0, transform=heel_on_the_wrong_body_part)
    summ = rep["kinematics"]["frontal_summary"]["rearfoot_eversion_2d_deg"]["left"]
    assert summ["mean"] is None
    assert "kinematics.rearfoot_eversion_2d_deg.left" in rep["quality"]["implausible_angles"]
    assert "measurement problem" in rep["unavailable"]["kinematics.rearfoot_eversion_2d_deg.left"]
    assert not [f for f in rep["findings"] if f["code"] == "excessive_rearfoot_eversion" and f["side"] == "left"]
    right = rep["kinematics"]["frontal_summary"]["rearfoot_eversion_2d_deg"]["right"]["mean"]
    assert np.isfinite(right) and abs(right - 4.0) < 2.0  # the untouched side is still reported
