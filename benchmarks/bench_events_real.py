"""Gait events on real walking: ours against published kinematic detectors, same input.

Every trial of the validation set with reference events (rig.validation; force plate or
annotations judged against the markers) is rendered by the rig's four virtual cameras at
30, 60, 120 fps and its native rate with 1.5 px landmark jitter (seeds 0-2), then timed by
``analyze_tracks`` (ours) and by the published detectors on the same keypoints: Zeni 2008,
O'Connor 2007, Hreljac 2000 and Ghoussayni 2004 twice — "[port]" rows are our short
implementations (benchmarks/event_peers.py), "[gaitkit 1.5.0]" rows are gaitkit's own code
(benchmarks/gaitkit_peers.py) — and gaitkit's learned IntellEvent (ONNX weights shipped in
its wheel). Each peer uses the side view nearest each foot. Prints per trial and frame
rate: % of reference events within one frame, signed median (IQR) of initial-contact and
foot-off errors, mean |stance %| error and mean |step time| error.
``.venv/bin/python benchmarks/bench_events_real.py`` (``--quick``: 60 fps, one seed). The
set is :data:`rig.validation.trials.EVENT_TRIAL_NAMES` (the split-belt plate trial
``pig_treadmill`` included); "all" rows pool every trial with reference events.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gaitkit_peers  # noqa: E402
from event_peers import PEERS, detect  # noqa: E402

from rig.gait import analyze_tracks  # noqa: E402
from rig.validation import load_trials, render_tracks  # noqa: E402
from rig.validation.trials import EVENT_TRIAL_NAMES  # noqa: E402
from rig.validation.scoring import EventScore, score_events  # noqa: E402

NOISE_PX = 1.5


def ours(tracks, belt):
    ev = analyze_tracks(tracks, belt).to_dict()["events"]
    return ({s: np.array(ev[s]["heel_strike_s"], float) for s in ev},
            {s: np.array(ev[s]["toe_off_s"], float) for s in ev})


GAITKIT = f"gaitkit {gaitkit_peers.gaitkit.__version__}" if gaitkit_peers.available() is None else None
METHODS = ([("ours", ours)] + [(f"{p.name} [port]", lambda tr, b, p=p: detect(p, tr, b)) for p in PEERS]
           + ([(f"{name} [{GAITKIT}]", lambda tr, b, m=m: gaitkit_peers.detect(m, tr, b))
               for m, name in gaitkit_peers.METHODS.items()] if GAITKIT else []))


def run(fps_list, seeds):
    """{(trial, fps label, method): EventScore}, pooled over seeds; plus "all" rows."""
    out = {}
    for trial in load_trials(names=EVENT_TRIAL_NAMES):
        if trial.reference is None:
            continue
        for fps in fps_list:
            f = trial.native_fps if fps == "native" else float(fps)
            label = f"native {trial.native_fps:g}" if fps == "native" else f"{fps}"
            for seed in seeds:
                tracks, ref = render_tracks(trial, f, NOISE_PX, seed)
                for name, method in METHODS:
                    try:
                        ic, fo = method(tracks, ref.belt_speed_m_s)
                    except Exception as e:  # a peer that cannot run on this input scores 0
                        print(f"  {name} failed on {trial.name} {label}: {type(e).__name__}: {e}")
                        ic, fo = {}, {}
                    sc = score_events(ref.ic_s, ref.fo_s, ic, fo, f)
                    for key in ((trial.name, label, name), ("all", "any" if fps == "native" else label, name)):
                        out[key] = out[key].merge(sc) if key in out else sc
    return out


def table(scores) -> list[str]:
    rows = ["| trial | fps | method | ≤1 frame | IC median (IQR) ms | FO median (IQR) ms | stance err pts | "
            "step err ms | missed |", "|" + "---|" * 9]
    for (trial, fps, name), sc in sorted(scores.items(), key=lambda kv: kv[0][0] == "all"):
        ic = sc.median_iqr_ms(sc.ic_err_s)
        fo = sc.median_iqr_ms(sc.fo_err_s)
        rows.append(f"| {trial} | {fps} | {name} | {sc.within_one_frame_pct:.0f} % | {ic[0]:+.0f} ({ic[1]:+.0f}..{ic[2]:+.0f}) | "
                    f"{fo[0]:+.0f} ({fo[1]:+.0f}..{fo[2]:+.0f}) | {sc.stance_abs_err_pts:.1f} | "
                    f"{sc.step_abs_err_s * 1e3:.0f} | {sc.missed}/{sc.n_reference} |")
    return rows


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    if GAITKIT is None:
        print(f"gaitkit's detectors left out: {gaitkit_peers.available()}")
    scores = run([60] if quick else [30, 60, 120, "native"], [0] if quick else [0, 1, 2])
    for line in table(scores):
        print(line, flush=True)


if __name__ == "__main__":
    main()
