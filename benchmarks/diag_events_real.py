"""Where the real-walking event errors come from, per reference event (docs/validation.md,
"Where the errors come from").

For every scored reference event of the validation set it prints the signed error (ms) of
the fused event at 30, 60 and 120 fps:

- ``def``: the definition itself, on the native markers with no camera, noise or filter
  (forward velocity of the heel crossing -0.6 belt speeds, of the toe crossing 0, on a 1 ms
  grid of the markers' cubic spline): what a perfect estimator of our definition scores;
- ``clean``: rendered without landmark jitter (filter + frame sampling, no noise);
- ``mean ± sd``: with 1.5 px jitter over seeds 0-4 (sd: noise; a mean far from 0 with a
  small sd is a bias of that event, the same for every noise draw);
- ``L/R``: the two side views' own (unfused) events, mean over seeds.

``.venv/bin/python benchmarks/diag_events_real.py`` (about 30 s).
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.interpolate import CubicSpline

from rig.gait import analyze_tracks
from rig.gait._signals import level_crossings
from rig.gait.events import SideViewEventDetector
from rig.validation import load_trials, render_tracks

FPS = (30.0, 60.0, 120.0)
SEEDS = range(5)
NOISE_PX = 1.5
LEVEL = {"ic": -0.6, "fo": 0.0}  # belt speeds, as rig.gait.events.BeltVelocityEvents


def nearest(ref: float, det, within_s: float = 0.15) -> float:
    det = np.asarray(det, float)
    if not len(det):
        return np.nan
    e = det[np.argmin(np.abs(det - ref))] - ref
    return float(e) if abs(e) <= within_s else np.nan


def definition_error(trial, side: str, kind: str, ref: float) -> float:
    """Error of the velocity-level definition on the native markers (no camera)."""
    p = trial.markers[(side, "heel" if kind == "ic" else "toe")]
    tt = np.arange(max(trial.t_s[0], ref - 0.1), min(trial.t_s[-1], ref + 0.1), 0.001)
    u = CubicSpline(trial.t_s, p[:, 0])(tt, 1) / trial.belt_speed_m_s
    _, crossed_s = level_crossings(tt, u, LEVEL[kind], -1 if kind == "ic" else +1)
    return nearest(ref, crossed_s, 0.1) if len(crossed_s) else np.nan


def events(tracks, belt):
    """(fused, {view: per-view}) events: side -> kind -> times."""
    ev = analyze_tracks(tracks, belt).to_dict()["events"]
    fused = {s: {"ic": ev[s]["heel_strike_s"], "fo": ev[s]["toe_off_s"]} for s in ev}
    per_view = {}
    for v in ("left", "right"):
        tr = tracks[v]
        d = SideViewEventDetector(tr.header.facing).detect(v, tr.t_s, tr.lm)
        per_view[v] = {s: {"ic": d.heel_strike_[s].time_s, "fo": d.toe_off_[s].time_s} for s in d.heel_strike_}
    return fused, per_view


def main() -> None:
    print("| trial | side | event | ref s | def | fps | clean | mean ± sd (5 seeds) | L / R views |")
    print("|---|---|---|---|---|---|---|---|---|")
    for trial in load_trials():
        if trial.reference is None:
            continue
        runs = {}
        for fps in FPS:
            runs[fps] = [events(render_tracks(trial, fps, 0.0, 0)[0], trial.belt_speed_m_s)]
            runs[fps] += [events(render_tracks(trial, fps, NOISE_PX, s)[0], trial.belt_speed_m_s) for s in SEEDS]
        _, ref = render_tracks(trial, FPS[0], 0.0, 0)
        for side in ("left", "right"):
            for kind in ("ic", "fo"):
                for r in (ref.ic_s if kind == "ic" else ref.fo_s)[side]:
                    d = definition_error(trial, side, kind, float(r)) * 1e3
                    for fps in FPS:
                        (clean, _), *noisy = runs[fps]
                        c = nearest(r, clean[side][kind]) * 1e3
                        e = np.array([nearest(r, f[side][kind]) for f, _ in noisy]) * 1e3
                        lv = [np.nanmean([nearest(r, pv[v][side][kind]) for _, pv in noisy]) * 1e3 for v in ("left", "right")]
                        print(f"| {trial.name} | {side} | {kind} | {r:.3f} | {d:+.0f} | {fps:.0f} | {c:+.0f} | "
                              f"{np.nanmean(e):+.0f} ± {np.nanstd(e):.0f} | {lv[0]:+.0f} / {lv[1]:+.0f} |")


if __name__ == "__main__":
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nan means of an event a rate misses
        main()
