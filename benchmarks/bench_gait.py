"""Gait engine against the simulated walker's ground truth, and its speed.

One command prints the accuracy table over the grid (cadence 80-140 steps/min, belt
0.6-1.8 m/s, limp, pronation, pelvic drop/obliquity, noise, 5 % missing frames, label
swaps, 30-120 fps; plus the corners: 30/60/120 fps × the extreme paces, 30 s captures)
and the speed on a stored 10-minute four-view 120 fps session, written compactly and
with json.dumps defaults, reordered keys and CRLF (goal ≤ 10 s each):
``.venv/bin/python benchmarks/bench_gait.py`` (``--quick`` skips the speed part,
``--speed`` runs only it).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rig.gait import analyze_tracks
from rig.sim.walker import SimulatedWalker, WalkerParams

ARTEFACTS = dict(noise_px=2.0, missing_fraction=0.05, swap_fraction=0.05)
GRID = [  # (name, fps, params)
    ("normal 110/1.2", 60, dict()),
    ("slow 80/0.6", 60, dict(cadence_steps_per_min=80, belt_speed_m_s=0.6)),
    ("fast 140/1.8", 60, dict(cadence_steps_per_min=140, belt_speed_m_s=1.8)),
    ("100/1.0", 60, dict(cadence_steps_per_min=100, belt_speed_m_s=1.0)),
    ("125/1.5", 60, dict(cadence_steps_per_min=125, belt_speed_m_s=1.5)),
    ("limp stance +8", 60, dict(stance_pct_asymmetry=8.0)),
    ("limp step SI 10 %", 60, dict(step_time_asymmetry_pct=10.0, stance_pct_asymmetry=4.0)),
    ("pronation L 12°", 60, dict(rearfoot_eversion_left_deg=12.0)),
    ("pelvic drop 8°/obl 3°", 60, dict(pelvic_drop_right_deg=8.0, pelvic_obliquity_deg=3.0)),
    ("noise 4 px", 60, dict(noise_px=4.0)),
    ("30 fps", 30, dict()),
    ("90 fps", 90, dict()),
    ("120 fps", 120, dict()),
    ("120 fps 140/1.8", 120, dict(cadence_steps_per_min=140, belt_speed_m_s=1.8)),
]
# Corners of the grid: every frame rate × the extreme paces (steps/min, m/s), 30 s captures
CORNER_PACES = [(80, 0.6), (110, 1.2), (140, 1.8), (140, 1.2), (80, 1.0)]
CORNERS = [(f"corner {c}/{v}", fps, dict(cadence_steps_per_min=c, belt_speed_m_s=v))
           for fps in (30, 60, 120) for c, v in CORNER_PACES]
CORNER_DURATION_S = 30.0


def event_errors(est: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """|nearest estimate - truth| per true event (inf where nothing was detected)."""
    if len(est) == 0:
        return np.full(len(truth), np.inf)
    k = np.clip(np.searchsorted(est, truth), 1, len(est) - 1) if len(est) > 1 else np.zeros(len(truth), int)
    cand = np.stack([np.abs(est[np.maximum(k - 1, 0)] - truth), np.abs(est[k] - truth)])
    return cand.min(axis=0)


def evaluate(fps: float, params: dict, duration_s: float = 60.0, seed: int = 1) -> dict:
    p = WalkerParams(**{**ARTEFACTS, **params})
    w = SimulatedWalker(p, fps=fps, seed=seed)
    tracks = {v: w.track(v, duration_s) for v in ("left", "right", "rear", "front")}
    rep = analyze_tracks(tracks, p.belt_speed_m_s).to_dict()
    edge = 0.5  # events this close to the ends may lack their fit window
    tr = w.truth(edge, duration_s - edge)
    errs, n_det, n_true = [], 0, 0
    for s in ("left", "right"):
        for k in ("heel_strike_s", "toe_off_s"):
            est = np.array(rep["events"][s][k], float)
            truth = getattr(tr, k)[s]
            errs.append(event_errors(est, truth))
            inner = est[(est >= edge) & (est <= duration_s - edge)]
            n_det += len(inner)
            n_true += len(truth)
    e = np.concatenate(errs)
    sp = rep["spatiotemporal"]
    full = w.truth(0.0, duration_s)
    return dict(
        within_frame=float(np.mean(e <= 1.0 / fps)), within_60=float(np.mean(e <= 1 / 60)),
        extra=n_det - n_true, median_ms=float(np.median(e) * 1e3),
        cadence_err_pct=100 * abs(sp["cadence_steps_per_min"] / full.cadence_steps_per_min - 1),
        stance_err=max(abs(sp["stance_pct"][s] - full.stance_pct[s]) for s in ("left", "right")),
        step_err_ms=1e3 * max(abs(sp["step_time_s"][s] - full.step_time_s[s]) for s in ("left", "right")),
        ds_err=abs(sp["double_support_pct"] - full.double_support_pct),
        rearfoot_err=max(abs(rep["kinematics"]["frontal_summary"]["rearfoot_eversion_2d_deg"][s]["mean"]
                             - full.rearfoot_eversion_deg[s]) for s in ("left", "right")),
        obliquity_err=abs(rep["kinematics"]["frontal_summary"]["pelvic_obliquity_2d_deg"]["mean"]
                          - full.pelvic_obliquity_deg),
        findings=[".".join(filter(None, (f["code"], f.get("side") or f.get("measure")))) + f"({f['level']})"
                  for f in rep["findings"]],
        rejected=sum(rep["cycles_rejected"].values()),
    )


def accuracy_table(duration_s: float = 60.0) -> list[str]:
    head = (f"| case (+2 px noise, 5 % missing, 5 % swaps) | fps | events ≤1 frame | ≤16.7 ms | median ms | "
            f"extra | cadence err % | stance err pts | step time err ms | DS err pts | rearfoot err ° | "
            f"obliquity err ° | findings |")
    rows = [f"{duration_s:g} s captures:", "", head, "|" + "---|" * 13]
    worst = dict(within_frame=1.0, within_60=1.0, cad=0.0, stance=0.0, step=0.0)
    cases = [(n, f, p, duration_s) for n, f, p in GRID] + [(n, f, p, CORNER_DURATION_S) for n, f, p in CORNERS]
    for i, (name, fps, params, dur) in enumerate(cases):
        if i == len(GRID):
            rows += ["", f"corners of the grid, {dur:g} s captures:", "", head, "|" + "---|" * 13]
        r = evaluate(fps, params, dur)
        rows.append(f"| {name} | {fps} | {100 * r['within_frame']:.1f} % | {100 * r['within_60']:.1f} % | "
                    f"{r['median_ms']:.1f} | {r['extra']:+d} | {r['cadence_err_pct']:.2f} | {r['stance_err']:.2f} | "
                    f"{r['step_err_ms']:.1f} | {r['ds_err']:.2f} | {r['rearfoot_err']:.2f} | {r['obliquity_err']:.2f} | "
                    f"{', '.join(r['findings']) or '–'} |")
        worst["within_frame"] = min(worst["within_frame"], r["within_frame"])
        worst["within_60"] = min(worst["within_60"], r["within_60"])
        worst["cad"] = max(worst["cad"], r["cadence_err_pct"])
        worst["stance"] = max(worst["stance"], r["stance_err"])
        worst["step"] = max(worst["step"], r["step_err_ms"])
    rows.append("")
    rows.append(f"worst case: events within one frame of their rate {100 * worst['within_frame']:.1f} % "
                f"(goal ≥ 95 %), within 16.7 ms {100 * worst['within_60']:.1f} % (goal ≥ 95 %), cadence "
                f"{worst['cad']:.2f} % (goal ≤ 1 %), stance {worst['stance']:.2f} points (goal ≤ 2), step time "
                f"{worst['step']:.1f} ms (goal ≤ 10)")
    return rows


def loose_spelling(src: Path, dst: Path) -> Path:
    """The same file as Python's ``json.dumps`` defaults would write it (", " and ": "), keys
    reordered (lm, t, i) and CRLF line ends; the header line kept."""
    header, _, frames = src.read_text(encoding="utf-8").partition("\n")
    frames = re.sub(r'^\{"i":([^,]*),"t":([^,]*),"lm":(.*)\}$', r'{"lm":\3,"t":\2,"i":\1}', frames, flags=re.M)
    frames = frames.replace(",", ", ").replace(":", ": ").replace("\n", "\r\n")
    with open(dst, "w", encoding="utf-8", newline="") as f:
        f.write(header + "\r\n" + frames)
    return dst


def speed(duration_s: float = 600.0, fps: float = 120.0) -> list[str]:
    """analyze_tracks from arrays, then `gaitrig analyze` on the files in both spellings
    (same report required); the machine's load is printed with the times."""
    p = WalkerParams(**ARTEFACTS, stance_pct_asymmetry=4.0, pelvic_obliquity_deg=2.0)
    w = SimulatedWalker(p, fps=fps, seed=5)
    tracks = {v: w.track(v, duration_s) for v in ("left", "right", "rear", "front")}
    t0 = time.perf_counter()
    analyze_tracks(tracks, p.belt_speed_m_s).to_dict()
    t_arr = time.perf_counter() - t0
    del tracks
    rows = [f"speed, 10-minute four-view {fps:g} fps session ({int(4 * duration_s * fps)} frames), "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores:",
            f"  analyze_tracks from arrays: {t_arr:.2f} s ({duration_s / t_arr:.0f}x real time; goal ≤ 5 s)"]
    with tempfile.TemporaryDirectory() as d:
        compact = w.write(Path(d) / "compact", duration_s)
        (Path(d) / "loose").mkdir()
        spellings = {"compact (gaitrig infer)": compact,
                     "json.dumps defaults, keys reordered, CRLF": {
                         v: loose_spelling(f, Path(d) / "loose" / f.name) for v, f in compact.items()}}
        exe = Path(sys.executable).with_name("gaitrig")
        reports = []
        for name, paths in spellings.items():
            size_mb = sum(f.stat().st_size for f in paths.values()) / 1e6
            cmd = [str(exe), "analyze", *map(str, paths.values()), "--belt-speed", str(p.belt_speed_m_s), "--json"]
            t0 = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True)
            t_cli = time.perf_counter() - t0
            reports.append(res.stdout)
            verdict = "meets" if t_cli <= 10.0 else "MISSES"
            rows.append(f"  gaitrig analyze, {name}, {size_mb:.0f} MB, parsing included: {t_cli:.2f} s "
                        f"({duration_s / t_cli:.0f}x real time; {verdict} the goal ≤ 10 s)"
                        + ("" if res.returncode == 0 else " FAILED: " + res.stderr[-300:]))
        rows.append(f"  same report from both spellings: {'yes' if reports[0] == reports[1] else 'NO'}")
    return rows


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--speed" not in argv:
        for line in accuracy_table():
            print(line, flush=True)
        print()
    if "--quick" not in argv:
        for line in speed():
            print(line, flush=True)


if __name__ == "__main__":
    main()
