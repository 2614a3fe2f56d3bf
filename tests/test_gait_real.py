"""The gait engine on real walking (rig.validation): every trial of the event set
(EVENT_TRIAL_NAMES: two force-plate treadmill trials, two annotated overground ones, a
stroke trial without events), seen by the rig's cameras at 60 fps with 1.5 px landmark
jitter, against its force plates or judged annotations; and ahead of the published
kinematic detectors on the same input.
Needs the cached recordings (`gaitrig models fetch`)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assets_or_skip

from edge_models.registry import VALIDATION
from rig.gait import analyze_tracks
from rig.validation import load_trials, render_tracks
from rig.validation.scoring import EventScore, score_events
from rig.validation.trials import EVENT_TRIAL_NAMES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from event_peers import PEERS, detect  # noqa: E402

FPS, NOISE_PX, SEEDS = 60.0, 1.5, (0, 1, 2)


@pytest.fixture(scope="module")
def rendered():
    assets_or_skip(VALIDATION)
    out = []
    for trial in load_trials(names=EVENT_TRIAL_NAMES):
        for seed in SEEDS:
            tracks, ref = render_tracks(trial, FPS, NOISE_PX, seed)
            out.append((trial, tracks, ref, analyze_tracks(tracks, ref.belt_speed_m_s).to_dict()))
    return out


def _score(rep, ref):
    ev = rep["events"]
    return score_events(ref.ic_s, ref.fo_s, {s: np.array(ev[s]["heel_strike_s"], float) for s in ev},
                        {s: np.array(ev[s]["toe_off_s"], float) for s in ev}, FPS)


@pytest.fixture(scope="module")
def pooled(rendered):
    total = EventScore(frame_s=1 / FPS)
    for trial, _, ref, rep in rendered:
        if trial.reference is not None:
            total = total.merge(_score(rep, ref))
    return total


def test_every_scored_trial_is_analysed_as_walking_with_events(rendered):
    for trial, _, ref, rep in rendered:
        assert rep["mode"] == "walking", trial.name
        for s in ("left", "right"):
            conf = np.array(rep["events"][s]["heel_strike_confidence"], float)
            assert len(conf) and np.all((conf > 0) & (conf <= 1)), (trial.name, s)
            assert set(rep["events"][s]["initial_contact_type"]) <= {"heel", "forefoot"}
        assert set(rep["quality"]["events_dropped"]["left"]) == {"ic", "fo"}


def test_reference_events_found_and_stance_meets_the_goal(pooled):
    """24 events of the marker trials and 30 of the split-belt plate trial, 3 seeds; the
    only misses are the plate trial's two events in its first 0.25 s (4 of 6 renders)."""
    assert pooled.n_reference == 3 * (24 + 30)
    assert pooled.missed == 4
    assert pooled.stance_abs_err_pts <= 1.5  # measured 1.32 points


@pytest.mark.xfail(strict=True, reason="issue 8 open: initial-contact signed median +6.9 ms at 60 fps on the 162 "
                   "events (goal ±5 ms): the marker trials' 72 give +3 ms, the split-belt plate trial's 90 +8.5 ms, "
                   "while the other plate trial's contacts come -15 ms: the two plates' 20 N crossings sit 23 ms "
                   "apart on the same heel-velocity definition (docs/validation.md)")
def test_signed_median_initial_contact_goal(pooled):
    assert abs(np.median(pooled.ic_err_s)) <= 0.005  # initial contact within ±5 ms


@pytest.mark.xfail(strict=True, reason="issue 8 open: foot-off signed median -11.7 ms (IQR -16..+6) at 60 fps on "
                   "the 162 events (goal ±5 ms; -14 ms at 30 fps, -10 ms at 120 fps). The references' foot-offs "
                   "disagree: both plate trials' forefoot markers are metatarsal heads that roll up before the toes "
                   "leave (MT5 -17 ms, MT2 -14 ms), the Parkinson annotations +8 ms, the healthy one +19 ms; a level "
                   "fitted leave-one-trial-out makes every held-out trial worse (docs/validation.md)")
def test_signed_median_foot_off_goal(pooled):
    assert abs(np.median(pooled.fo_err_s)) <= 0.005  # foot off within ±5 ms


@pytest.mark.xfail(strict=True, reason="issue 8 open: 80 % (129 of 162) of real reference events within one "
                   "60 fps frame (goal 95 %; 96 % at 30 fps, 42 % at 120 fps). The references disagree with one "
                   "another by more than a frame: the two plate trials' contacts come -15 and +8 ms on the same "
                   "definition, a Parkinson's foot lands sliding (+45 ms), metatarsal vs toe markers at foot-off; "
                   "fitting the two levels leave-one-trial-out makes every held-out trial worse; an oracle choosing "
                   "foot point, velocity level and lag with hindsight on the native markers reaches 49/54 (90.7 %) "
                   "while each trial alone is reachable (docs/validation.md, benchmarks/diag_events_bound.py)")
def test_events_within_one_frame_goal(pooled):
    assert pooled.within_one_frame_pct >= 95.0


def test_plate_trial_events_within_25_ms_and_stance_within_goal(rendered):
    """The force-plate record: every event within 25 ms (1.5 frames; measured worst 23 ms),
    stance within the 1.5-point goal."""
    for trial, _, ref, rep in rendered:
        if trial.name != "treadmill":
            continue
        sc = _score(rep, ref)
        assert sc.missed == 0
        assert np.max(np.abs(np.r_[sc.ic_err_s, sc.fo_err_s])) <= 0.025
        assert sc.stance_abs_err_pts <= 1.5


def test_split_belt_plate_trial_per_trial_figures(rendered):
    """The second plate trial (pig_treadmill, 30 plate events judged for crossover): 80 of
    the 90 (3 seeds) within one 60 fps frame, every found event within 30 ms (measured worst
    28 ms); the only misses are its right contact 0.052 s and left foot-off 0.232 s into the
    capture (4 of 6 renders). Stance 1.6 points: over the 1.5 goal on this trial alone."""
    total = EventScore(frame_s=1 / FPS)
    for trial, _, ref, rep in rendered:
        if trial.name != "pig_treadmill":
            continue
        sc = _score(rep, ref)
        ev = rep["events"]
        for side in ("left", "right"):
            for r, det in ((ref.ic_s[side], ev[side]["heel_strike_s"]), (ref.fo_s[side], ev[side]["toe_off_s"])):
                d = np.array(det, float)
                missed = [x for x in r if not len(d) or np.min(np.abs(d - x)) > 0.15]
                assert all(x < 0.25 for x in missed), (side, missed)
        total = total.merge(sc)
    errs = np.abs(np.r_[total.ic_err_s, total.fo_err_s])
    assert total.n_reference == 90 and total.missed == 4
    assert int(np.sum(errs <= 1 / FPS + 1e-9)) == 80
    assert np.max(errs) <= 0.030
    assert 1.5 < total.stance_abs_err_pts <= 2.0


def test_ours_ahead_of_every_peer_on_the_same_input(rendered, pooled):
    for peer in PEERS:
        total = EventScore(frame_s=1 / FPS)
        for trial, tracks, ref, _ in rendered:
            if trial.reference is not None:
                ic, fo = detect(peer, tracks, ref.belt_speed_m_s)
                total = total.merge(score_events(ref.ic_s, ref.fo_s, ic, fo, FPS))
        assert pooled.within_one_frame_pct > total.within_one_frame_pct, peer.name
        assert pooled.missed <= total.missed, peer.name


def test_stroke_trial_without_reference_still_gives_alternating_events(rendered):
    for trial, _, _, rep in rendered:
        if trial.name == "stroke":
            hs = {s: np.array(rep["events"][s]["heel_strike_s"], float) for s in ("left", "right")}
            both = sorted([(t, s) for s in hs for t in hs[s]])
            assert len(both) >= 4
            assert all(a[1] != b[1] for a, b in zip(both, both[1:]))  # left and right alternate
