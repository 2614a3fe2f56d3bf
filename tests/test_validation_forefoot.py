"""What a metatarsal marker standing in for the camera's toe tip costs at foot off
(rig.validation.forefoot, docs/validation.md): measured on the public recordings that carry a
hallux marker. Needs the cached recordings (`gaitrig models fetch`) except the first test."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import assets_or_skip

from rig.validation.forefoot import FOREFOOT_TRIALS, forefoot_push_offs, push_off_lags
from rig.validation.trials import EVENT_TRIAL_NAMES

FILES = sorted({s.file for s in FOREFOOT_TRIALS.values()})
MT2 = "MT2 (Plug-in Gait TOE)"


def test_a_marker_that_rolls_up_first_has_a_negative_lag():
    """Pure: two feet ramp from planted (-1) to swing (+1) walking speeds; the second reaches
    the foot-off level 8 ms before the hallux, a third never comes near and gets no lag."""
    t = np.arange(0.0, 1.0, 0.001)
    ramp = lambda t0: np.clip((t - t0) / 0.1, -1.0, 1.0)  # noqa: E731
    lags = push_off_lags(t, {"hallux": ramp(0.5), "mt": ramp(0.492), "far": ramp(0.2)}, "hallux")
    assert len(lags) == 1
    th, lag = lags[0]
    assert th == pytest.approx(0.5, abs=1e-6)
    assert lag["mt"] == pytest.approx(-8.0, abs=1e-6)
    assert np.isnan(lag["far"])


def test_the_hallux_recordings_are_not_event_references():
    """pyc3dsample's plate channels are all zero (no plate events) and neither trial is
    annotated, so they measure the stand-in and are kept out of the scored event set."""
    import ezc3d

    from edge_models.fetch import validation_path
    assets_or_skip(FILES)
    for name in ("pyc3dsample_testsample.c3d", "pyc3dsample_testsample2.c3d"):
        c = ezc3d.c3d(str(validation_path(name)))
        assert int(c["parameters"]["FORCE_PLATFORM"]["USED"]["value"][0]) == 1
        labels = [s.strip() for s in c["parameters"]["ANALOG"]["LABELS"]["value"]]
        assert labels[:6] == ["Force.Fx1", "Force.Fy1", "Force.Fz1", "Moment.Mx1", "Moment.My1", "Moment.Mz1"]
        assert np.all(np.array(c["data"]["analogs"])[0, :6] == 0.0)  # (channel 7 is the trigger)
    assert not set(FOREFOOT_TRIALS) & set(EVENT_TRIAL_NAMES)


def test_metatarsal_markers_reach_the_foot_off_level_before_the_hallux():
    """Every push-off of both recordings: Plug-in Gait's TOE (2nd metatarsal head) crosses the
    engine's foot-off level 1.3-9.3 ms before the hallux marker (median 4.9 ms, 10 push-offs);
    on the OFM foot the 5th metatarsal head crosses 5.1-12.7 ms before it, and before the
    2nd-3rd metatarsal marker each time. That is what the plate trials' toe stand-ins (MT2,
    MT5) cost against a toe tip: a part of their early foot-offs, not all of it."""
    assets_or_skip(FILES)
    speeds, pushes = {}, {}
    for name in FOREFOOT_TRIALS:
        speeds[name], pushes[name] = forefoot_push_offs(name)
    assert {n: round(v, 2) for n, v in speeds.items()} == {"pig_hallux_1": 1.40, "pig_hallux_2": 0.58,
                                                           "ofm_overground": 1.21}
    assert [p.side for p in pushes["pig_hallux_1"]] == ["right", "left", "right", "left"]
    assert [p.side for p in pushes["pig_hallux_2"]] == ["left", "right"] * 3
    assert [p.side for p in pushes["ofm_overground"]] == ["left", "right", "left"]
    mt2 = np.array([p.lag_ms[MT2] for n in ("pig_hallux_1", "pig_hallux_2") for p in pushes[n]])
    assert np.round(mt2, 1).tolist() == [-4.7, -5.1, -2.5, -5.6, -8.8, -9.3, -3.1, -9.1, -1.3, -3.5]
    assert round(float(np.median(mt2)), 1) == -4.9
    ofm = pushes["ofm_overground"]
    mt5 = [round(p.lag_ms["MT5 head (OFM D5M)"], 1) for p in ofm]
    assert mt5 == [-12.3, -5.1, -12.7]
    assert all(p.lag_ms["MT5 head (OFM D5M)"] < p.lag_ms["MT2-3 (OFM TOE)"] < 0 for p in ofm)
