"""Clock synchronisation against a simulated controller clock: known drift and offset,
transmission latency that jitters upwards, and occasional host hiccups."""
from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge.protocol.clocksync import ClockSync, ClockSyncError

HZ = 1_000_000


def simulate(drift_ppm: float, n: int, seed: int = 0, hiccups: float = 0.05):
    """Heartbeats every ~250 ms: (true send time, clock, host receive time)."""
    rng = np.random.default_rng(seed)
    offset, rate, t0 = 987_654_321_000, HZ * (1 + drift_ppm * 1e-6), 5000.0
    out = []
    for i in range(n):
        t = t0 + i * 0.25 + rng.uniform(-0.005, 0.005)
        latency = 0.0002 + rng.exponential(0.0005)
        if rng.random() < hiccups:
            latency += rng.uniform(0.005, 0.05)
        out.append((t, offset + int((t - t0) * rate), t + latency))
    return out, (lambda t: offset + int((t - t0) * rate))


@pytest.mark.parametrize("drift", [-45.0, 0.0, 12.5, 50.0])
def test_tracks_drifting_clock_within_a_millisecond(drift):
    samples, clock_at = simulate(drift, 400, seed=int(drift) + 100)
    cs = ClockSync(HZ)
    errors = []
    for i, (t, clock, recv) in enumerate(samples):
        cs.add(clock, recv)
        if i >= 40:  # after 10 s of heartbeats
            future = t + 0.2
            errors.append(cs.to_host_s(clock_at(future)) - future)
    errors = np.array(errors)
    assert np.abs(errors).max() < 0.001
    assert 0 <= np.median(errors) < 0.0006  # biased late by about the minimum latency only
    assert cs.drift_ppm == pytest.approx(drift, abs=4.0)


def test_hiccups_do_not_bend_the_line():
    samples, clock_at = simulate(20.0, 400, seed=7, hiccups=0.3)
    cs = ClockSync(HZ)
    for _, clock, recv in samples:
        cs.add(clock, recv)
    t = samples[-1][0]
    assert abs(cs.to_host_s(clock_at(t)) - t) < 0.001
    assert cs.drift_ppm == pytest.approx(20.0, abs=6.0)


def test_round_trip_and_restart_and_not_ready():
    cs = ClockSync(HZ)
    with pytest.raises(ClockSyncError):
        cs.to_host_s(1)
    assert cs.drift_ppm is None
    cs.add(1_000_000, 10.0)
    assert cs.to_host_s(1_500_000) == pytest.approx(10.5)  # nominal rate before a fit
    assert cs.to_clock(10.5) == 1_500_000
    cs.add(2_000_000, 11.0)
    cs.add(5, 12.0)  # the clock went backwards: the controller restarted
    assert cs.samples == 1 and cs.to_host_s(5) == pytest.approx(12.0)
