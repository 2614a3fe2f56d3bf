"""Re-recording simulation: the same walk analysed again with only the measurement error
re-drawn (landmark noise, dropped frames, left/right label swaps), at the camera's frame
rate. The repeatability table (``benchmarks/bench_repeatability.py``) and the honest-
comparison tests (``tests/test_compare_honest.py``) record sessions through here.

``walk_seed`` fixes the walk (stride-to-stride variability, drift); ``draw`` picks the
measurement error (the walker's ``artifact_seed``). Real walks come from the validation
set (:mod:`rig.validation`): its recordings hold two to four strides, too few to compare,
so one reference stride cycle is repeated to the session length (:func:`looped`) — real
foot motion, without stride-to-stride variability — and rendered with the same
measurement error as the walker. Landmark noise: 2 px SD per coordinate,
above the 1.5 px the real-walking validation set uses for the jitter of the pose model on
real video; 2 % of frames with nobody (runs of 50 ms) and 2 % of side-view frames with
swapped labels (runs of 150 ms), as the walker benchmark grid's milder half.
"""
from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

import numpy as np

from rig.gait import analyze_tracks
from rig.gait.estimates import session_estimates
from rig.keypoints import VIEWS

from ._artifacts import Artifacts
from ._body import SWAP_PERMUTATION
from .walker import SimulatedWalker, WalkerParams

FPS = 60.0
DURATION_S = 40.0
MEASUREMENT_ERROR = {"noise_px": 2.0, "missing_fraction": 0.02, "swap_fraction": 0.02}
MISSING_RUN_S, SWAP_RUN_S = 0.05, 0.15  # as the walker's defaults
DRAW_SEED_BASE = 1_000_003  # artifact seeds: DRAW_SEED_BASE * walk_seed + draw (never a walk seed)


def walker_report(walk: dict, walk_seed: int, draw: int, duration_s: float = DURATION_S, fps: float = FPS) -> dict:
    """Analysed report of one recording: walker knobs ``walk`` (WalkerParams fields without
    the measurement error), the walk ``walk_seed``, the measurement-error ``draw``."""
    params = WalkerParams(**{**walk, **MEASUREMENT_ERROR})
    w = SimulatedWalker(params, fps=fps, seed=walk_seed, artifact_seed=DRAW_SEED_BASE * walk_seed + draw)
    tracks = {v: w.track(v, duration_s) for v in VIEWS}
    return analyze_tracks(tracks, params.belt_speed_m_s).to_dict()


def looped(trial, duration_s: float):
    """``trial`` (a :class:`rig.validation.RealTrial` with reference events) made
    ``duration_s`` long by repeating its first right-foot stride cycle (reference initial
    contact to the next). The small mismatch of each marker between the cycle's ends is
    removed as a linear ramp over the cycle so the repeats join without a jump; the reference
    events inside the cycle repeat with it."""
    ic = np.sort(trial.reference.ic_s["right"]) if trial.reference else np.empty(0)
    if len(ic) < 2:
        raise ValueError(f"{trial.name}: needs two right initial contacts to loop a stride")
    t0, period = float(ic[0]), float(ic[1] - ic[0])
    keep = (trial.t_s >= t0) & (trial.t_s < t0 + period)
    phase = trial.t_s[keep] - t0
    reps = int(math.ceil(duration_s / period))
    t = (phase[None, :] + period * np.arange(reps)[:, None]).ravel()
    markers = {}
    for k, p in trial.markers.items():
        ends = np.array([np.interp([t0, t0 + period], trial.t_s, p[:, c]) for c in range(p.shape[1])])
        seg = p[keep] - np.outer(phase / period, ends[:, 1] - ends[:, 0])
        markers[k] = np.tile(seg, (reps, 1))

    def cycle(ev):  # the reference events inside the looped cycle
        e = np.asarray(ev, float) - t0
        e = np.sort(e[(e >= 0) & (e < period)])
        return (e[None, :] + period * np.arange(reps)[:, None]).ravel()
    ref = replace(trial.reference, ic_s={s: cycle(v) for s, v in trial.reference.ic_s.items()},
                  fo_s={s: cycle(v) for s, v in trial.reference.fo_s.items()})
    return replace(trial, name=f"{trial.name} (one stride x {reps})", t_s=t, markers=markers, reference=ref)


@lru_cache(maxsize=8)
def _looped_trial(name: str, duration_s: float):
    from rig.validation import load_trial
    return looped(load_trial(name), duration_s)


def with_artifacts(tracks: dict, seed: int) -> dict:
    """Dropped-frame runs (all views) and label-swap runs (side views) of the walker's
    artefact model (:class:`rig.sim._artifacts.Artifacts`) applied to rendered tracks."""
    art = Artifacts(seed)
    for view, tr in tracks.items():
        fps = tr.header.fps
        if view in ("left", "right"):
            sw = art.swapped(view, tr.index, MEASUREMENT_ERROR["swap_fraction"], max(1, round(SWAP_RUN_S * fps)))
            tr.lm[sw] = tr.lm[sw][:, SWAP_PERMUTATION]
        miss = art.missing(view, tr.index, MEASUREMENT_ERROR["missing_fraction"], max(1, round(MISSING_RUN_S * fps)))
        tr.lm[miss] = np.nan
    return tracks


def real_report(trial_name: str, draw: int, duration_s: float = DURATION_S, fps: float = FPS) -> tuple[dict, object]:
    """(report, reference) of one recording of the looped real walk ``trial_name``."""
    from rig.validation import render_tracks
    trial = _looped_trial(trial_name, duration_s)
    seed = DRAW_SEED_BASE + draw
    tracks, ref = render_tracks(trial, fps, MEASUREMENT_ERROR["noise_px"], seed)
    return analyze_tracks(with_artifacts(tracks, seed), ref.belt_speed_m_s).to_dict(), ref


def values(report: dict) -> dict[str, float]:
    """Measure key -> the session's value (NaN where not measured)."""
    return {k: (e.value if e.n else math.nan) for k, e in session_estimates(report).items()}
