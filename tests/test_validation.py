"""The real-walking validation set: loading, judging reference events, rendering to the
rig's cameras (rig.validation). Needs the cached recordings (`gaitrig models fetch`)."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assets_or_skip

from edge_models.registry import VALIDATION
from rig.gait import analyze_tracks
from rig.keypoints import VIEWS
from rig.sim._camera import default_cameras
from rig.validation import load_trial, load_trials, render_tracks
from rig.validation.trials import EVENT_TRIAL_NAMES, judge_event, plate_events


@pytest.fixture(scope="module")
def trials():
    assets_or_skip(VALIDATION)
    return {t.name: t for t in load_trials(names=EVENT_TRIAL_NAMES)}


def test_plate_events_interpolate_the_20_newton_crossings():
    t = np.arange(6) * 0.01
    f = np.array([0.0, 10.0, 30.0, 300.0, 15.0, 0.0])
    on, off = plate_events(t, f)
    assert on == pytest.approx([0.015])  # 10 N -> 30 N: halfway
    assert off == pytest.approx([0.03 + 0.01 * (280 / 285)])


def test_the_event_set_has_five_trials_in_the_treadmill_frame(trials):
    assert list(trials) == ["treadmill", "healthy", "parkinson", "stroke", "pig_treadmill"]
    for tr in trials.values():
        hips = 0.5 * (tr.markers[("left", "hip")] + tr.markers[("right", "hip")])
        # overground walking minus its mean velocity stays on the belt: the hips wander < 0.3 m
        assert np.ptp(hips[:, 0]) < 0.3, tr.name
        assert np.mean(tr.markers[("left", "hip")][:, 1]) > np.mean(tr.markers[("right", "hip")][:, 1])
        assert 0.5 < tr.belt_speed_m_s < 1.5, tr.name
    assert trials["stroke"].reference is None
    # both plate trials: the same 20 N plate definition; the split-belt one judged for crossover
    assert [tr.name for tr in trials.values() if tr.reference and tr.reference.source.startswith("force plate")] \
        == ["treadmill", "pig_treadmill"]
    assert [tr.reference.n_events for tr in trials.values() if tr.reference] == [8, 4, 12, 30]


def test_treadmill_reference_is_the_plate_and_left_is_half_a_stride_later(trials):
    ref = trials["treadmill"].reference
    assert ref.ic_s["right"] == pytest.approx([0.2006, 1.4045], abs=0.002)
    assert ref.fo_s["right"] == pytest.approx([0.9863, 2.1733], abs=0.002)
    assert ref.ic_s["left"][0] == pytest.approx(1.4045 - 0.6, abs=0.002)


def test_annotations_the_markers_contradict_are_dropped_with_a_reason(trials):
    healthy = trials["healthy"].reference
    # gaitkit's healthy trial annotates 4 + 2 contacts and 4 + 3 foot-offs; the markers
    # confirm 3 contacts and 1 foot-off (the rest are mid-swing, mid-stance or duplicates)
    assert len(healthy.dropped) == 9
    assert healthy.ic_s["left"] == pytest.approx([163 / 150])
    assert healthy.fo_s["right"].size == 0
    assert all("markers disagree" in d.reason for d in healthy.dropped)
    pd = trials["parkinson"].reference
    assert [(d.side, d.kind, round(d.time_s * 150)) for d in pd.dropped] == [("left", "ic", 581)]


def test_judge_accepts_a_landing_and_refuses_mid_stance():
    t = np.arange(0, 1, 0.01)
    speed = np.where(t < 0.5, 2.0, 0.05)
    assert judge_event("ic", 0.5, t, speed) is None
    assert "markers disagree" in judge_event("ic", 0.8, t, speed)
    assert "markers disagree" in judge_event("fo", 0.5, t, speed)
    assert "edge" in judge_event("ic", 0.02, t, speed)


def test_render_gives_what_analyze_tracks_takes(trials):
    tr = trials["treadmill"]
    tracks, ref = render_tracks(tr, 60.0, 1.5, seed=3)
    assert set(tracks) == set(VIEWS)
    n = int(np.floor(tr.duration_s * 60 + 1e-9)) + 1
    for v, track in tracks.items():
        assert track.header.fps == 60.0 and track.header.view == v
        assert track.lm.shape == (n, 33, 4)
        assert track.header.facing == default_cameras()[v].facing
    again, _ = render_tracks(tr, 60.0, 1.5, seed=3)
    assert np.array_equal(again["left"].lm, tracks["left"].lm)
    clean, _ = render_tracks(tr, 60.0, 0.0, seed=3)
    jitter = tracks["left"].lm[..., :2] - clean["left"].lm[..., :2]
    assert np.std(jitter) == pytest.approx(1.5, rel=0.05)
    assert ref.belt_speed_m_s == tr.belt_speed_m_s
    rep = analyze_tracks(tracks, ref.belt_speed_m_s).to_dict()
    assert rep["mode"] == "walking"


def test_stance_heel_moves_back_at_the_belt_speed_in_the_side_view(trials):
    tr = trials["treadmill"]
    tracks, ref = render_tracks(tr, 100.0, 0.0, seed=0)
    t = tracks["right"].t_s
    x = tracks["right"].lm[:, 30, 0]
    ic, fo = ref.ic_s["right"][0], ref.fo_s["right"][0]
    mid = (t > ic + 0.15) & (t < fo - 0.3)
    slope = np.polyfit(t[mid], x[mid], 1)[0]
    cam = default_cameras()["right"]
    # heel 0.09 m nearer the right camera than the belt centre line
    px_per_m = cam.focal_px / (3.0 - 0.09)
    assert -slope / px_per_m == pytest.approx(tr.belt_speed_m_s, rel=0.08)


def test_unknown_trial_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown trial"):
        load_trial("kuopio")
