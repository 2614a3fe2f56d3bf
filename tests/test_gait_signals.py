"""Gap-aware signal helpers of the gait engine (rig.gait._signals): the masked
least-squares derivative that times events across missing landmarks, and gap bridging."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import savgol_filter

from rig.gait._signals import fill_gaps, masked_poly_derivative


def test_complete_window_is_the_savitzky_golay_derivative():
    rng = np.random.default_rng(0)
    t = np.arange(400) / 60.0
    x = 80 * np.sin(3 * t) + rng.normal(0, 1.5, len(t))
    for n, p in ((9, 3), (13, 2), (35, 3)):
        v, ratio = masked_poly_derivative(x, n, p, 1 / 60)
        h = n // 2
        ref = savgol_filter(x, n, p, deriv=1, delta=1 / 60)
        np.testing.assert_allclose(v[h:-h], ref[h:-h], atol=1e-8)
        np.testing.assert_allclose(ratio[h:-h], 1.0, atol=1e-9)
        # near the capture's ends the window shrinks to the largest centred one (never
        # one-sided, never extrapolated), and the extra noise shows in the ratio
        for i in (2, h - 1, len(x) - 3):
            hi = min(i, len(x) - 1 - i)
            if 2 * hi + 1 >= p + 2:
                seg = x[i - hi:i + hi + 1]
                assert v[i] == pytest.approx(savgol_filter(seg, 2 * hi + 1, p, deriv=1, delta=1 / 60)[hi], abs=1e-6)
                assert ratio[i] >= 1.0
        assert np.isnan(v[:2]).all() and np.isnan(v[-2:]).all()  # a cubic needs 5 frames


def test_missing_samples_are_left_out_not_bridged_and_their_cost_measured():
    t = np.arange(120) / 30.0
    x = 3 * t ** 3 - 20 * t ** 2 + 40 * t  # a cubic: its derivative is exact whatever is left out
    x[50:53] = np.nan  # a 3-frame hole where the velocity bends
    v, ratio = masked_poly_derivative(x, 13, 3, 1 / 30)
    ok = np.isfinite(v)
    assert ok[44:60].all()  # every frame near the hole, inside it too, keeps a velocity
    np.testing.assert_allclose(v[ok], (9 * t ** 2 - 40 * t + 40)[ok], atol=1e-8)
    assert np.all(ratio[45:59] > 1.0) and ratio[20] == 1.0 and ratio[59] == 1.0  # fewer samples -> more noise, measured
    # a linear bridge through the same hole (what the derivative saw before) bends the velocity
    bridged = savgol_filter(fill_gaps(t, x, 0.1), 13, 3, deriv=1, delta=1 / 30)
    assert np.max(np.abs(bridged[44:60] - (9 * t ** 2 - 40 * t + 40)[44:60])) > 0.05


def test_a_half_window_without_samples_gives_no_velocity():
    x = np.arange(100, dtype=float)
    x[40:47] = np.nan  # 7 missing frames: the frames next to it have an empty half window of 6
    v, _ = masked_poly_derivative(x, 13, 3, 1 / 30)
    assert np.isnan(v[46]) and np.isfinite(v[47 + 1])


def test_gap_bridging_limit_is_the_runs_own_duration():
    t = np.arange(30) / 30.0
    x = t.copy()
    x[10:13] = np.nan  # 3 frames = 0.1 s: bridged under a 0.1 s limit
    x[20:24] = np.nan  # 4 frames = 0.133 s: left open
    y = fill_gaps(t, x, 0.1)
    assert np.isfinite(y[10:13]).all() and np.isnan(y[20:24]).all()
