"""``gaitrig analyze`` (keypoint files -> gait report) and ``gaitrig compare`` (two
reports of one patient in two conditions). Exit 2 with one line on stderr for bad input."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from rig.keypoints import KeypointFileError
from rig.malloc import keep_freed_blocks_for_reuse

from .compare import compare_reports
from .inputs import read_checked, validate_report
from .outages import describe
from .repeatability import MdcTableError
from .report import GaitInputError, analyze_tracks


def _fail(msg: str) -> int:
    print(f"gaitrig: error: {msg}", file=sys.stderr)
    return 2


def load_tracks(paths: list[str]) -> dict:
    """Read keypoint files (in parallel processes when they are large: JSON parsing is the
    bottleneck of a long session and the node has two cores)."""
    import os
    sizes = [os.path.getsize(p) for p in paths]
    if len(paths) > 1 and sum(sizes) > 50e6 and (os.cpu_count() or 1) > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=min(len(paths), os.cpu_count() or 1)) as ex:
            read = list(ex.map(read_checked, paths))
    else:
        read = [read_checked(p) for p in paths]
    tracks = {}
    for p, tr in zip(paths, read):
        v = tr.header.view
        if v in tracks:
            raise GaitInputError(f"{p}: a second {v!r} view (each view once)")
        tracks[v] = tr
    return tracks


def run_analyze(args) -> int:
    if len(args.files) > 4:
        return _fail("at most four keypoint files (left, right, rear, front)")
    keep_freed_blocks_for_reuse()  # parsing builds and drops large arrays (rig/malloc.py)
    try:
        tracks = load_tracks(args.files)
        cameras = None
        if args.cameras:
            from rig.threed.camera import load_cameras
            cameras = load_cameras(args.cameras)
        report = analyze_tracks(tracks, args.belt_speed, cameras)
    except (KeypointFileError, GaitInputError, ValueError) as e:
        return _fail(str(e).splitlines()[0])
    except OSError as e:
        return _fail(f"{e.filename}: {e.strerror}")
    d = report.to_dict()
    text = json.dumps(d, indent=None if args.json else 2, separators=(",", ":") if args.json else None)
    if args.out:
        try:
            Path(args.out).write_text(json.dumps(d) + "\n")
        except OSError as e:
            return _fail(f"--out {args.out}: {e.strerror}")
    if args.json:
        print(text)
    else:
        print(format_report(d))
    return 0


def _f(x, fmt="{:.2f}", unit=""):
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else fmt.format(x) + unit


def format_report(d: dict) -> str:
    sp = d["spatiotemporal"]
    lines = [f"gait report ({d['mode']}): views {', '.join(d['views'])}, {d['duration_s']:.1f} s at {d['fps']:g} fps, "
             f"belt {d['belt_speed_m_s']:g} m/s"]
    if d["mode"] == "walking":
        lines.append(f"  events: left {len(d['events']['left']['heel_strike_s'])} heel strikes, "
                     f"right {len(d['events']['right']['heel_strike_s'])}; cycles used L {d['cycles_used']['left']} "
                     f"/ R {d['cycles_used']['right']}, rejected L {d['cycles_rejected']['left']} / R {d['cycles_rejected']['right']}")
        k3 = (d.get("kinematics") or {}).get("3d")
        if k3:
            sm = k3["summary"]
            ev, fp = sm["rearfoot_eversion_3d_deg"], sm["foot_progression_3d_deg"]
            lines.append(f"  angles: 3D from the calibrated cameras ({', '.join(k3['views'])}); rearfoot eversion "
                         f"L {_f(ev['left']['mean'], '{:.1f}')} / R {_f(ev['right']['mean'], '{:.1f}')} deg, "
                         f"foot progression L {_f(fp['left']['mean'], '{:.1f}')} / R {_f(fp['right']['mean'], '{:.1f}')} deg, "
                         f"step width {_f(sm['step_width_3d_m']['mean'], '{:.3f}')} m, step length (feet + belt) "
                         f"L {_f(sm['step_length_3d_m']['left']['mean'], '{:.3f}')} / "
                         f"R {_f(sm['step_length_3d_m']['right']['mean'], '{:.3f}')} m")
        else:
            lines.append("  angles: 2D projections (" + d.get("unavailable", {}).get("kinematics.3d", "no 3D") + ")")
        lines.append(f"  cadence {_f(sp['cadence_steps_per_min'], '{:.1f}')} steps/min; double support "
                     f"{_f(sp['double_support_pct'], '{:.1f}')} % of the cycle")
        lines.append(f"  {'measure':<18}{'left':>10}{'right':>10}{'SI %':>9}")
        for m, fmt in (("stride_time_s", "{:.3f}"), ("step_time_s", "{:.3f}"), ("stance_pct", "{:.1f}"),
                       ("swing_pct", "{:.1f}"), ("step_length_m", "{:.3f}"), ("stride_length_m", "{:.3f}")):
            lines.append(f"  {m:<18}{_f(sp[m]['left'], fmt):>10}{_f(sp[m]['right'], fmt):>10}"
                         f"{_f(sp['symmetry_index_pct'].get(m), '{:+.1f}'):>9}")
        fs = d["kinematics"].get("frontal_summary", {})
        for k in ("rearfoot_eversion_2d_deg", "knee_fppa_2d_deg"):
            if k in fs:
                lines.append(f"  {k:<26} L {_f(fs[k]['left']['mean'], '{:.1f}')}  R {_f(fs[k]['right']['mean'], '{:.1f}')} (2D)")
        if "pelvic_obliquity_2d_deg" in fs:
            lines.append(f"  pelvic_obliquity_2d_deg    {_f(fs['pelvic_obliquity_2d_deg']['mean'], '{:+.1f}')} (2D, + left hip higher)")
    elif d.get("static"):
        lines.append("  static evaluation (standing):")
        for k, v in d["static"]["values"].items():
            if "median" in v:
                lines.append(f"    {k}: {_f(v['median'], '{:+.1f}')} deg")
            else:
                lines.append(f"    {k}: " + ", ".join(f"{s} {_f(x['median'], '{:+.1f}')} deg" for s, x in v.items()))
    if d.get("outages"):
        lines.append("  camera outages:")
        lines += [f"    - {describe(o)}" for o in d["outages"]]
    lines.append(f"  findings (frontal ones from {d.get('findings_source', '2d').upper()}): "
                 + ("none" if not d["findings"] else ""))
    for f in d["findings"]:
        lines.append(f"    - {f['text']}")
    if d["unavailable"]:
        lines.append("  not computed:")
        for k, why in d["unavailable"].items():
            lines.append(f"    {k}: {why}")
    return "\n".join(lines)


def run_compare(args) -> int:
    try:
        a, b = _read_report(args.a), _read_report(args.b)
        out = compare_reports(a, b, names=(args.a, args.b))
    except (GaitInputError, MdcTableError) as e:
        return _fail(str(e))
    if args.json:
        print(json.dumps(out))
        return 0
    print(format_comparison(out))
    return 0


def format_comparison(out: dict) -> str:
    """One line per measure: difference, stride-level 95 % CI, MDC95, verdict."""
    lines = [f"{out['b']} minus {out['a']}: difference, its 95 % CI over strides, the measure's MDC95 "
             f"(measurement error between recordings), verdict",
             f"  changed = beyond both errors, false-discovery rate {out['fdr'] * 100:g} % over the measures",
             f"  {'measure':<34}{'difference':>11}  {'95 % CI':<20}{'MDC95':>8}  verdict"]
    for r in out["measures"]:
        name = r["measure"] + (f".{r['side']}" if r["side"] else "")
        if r["difference"] is None:
            lines.append(f"  {name:<34}{'n/a':>11}  {'':<20}{_f(r['mdc95'], '{:.3g}'):>8}  {r['verdict']}: {r.get('reason', '')}")
            continue
        ci = f"[{r['ci'][0]:+.3g}, {r['ci'][1]:+.3g}]"
        lines.append(f"  {name:<34}{r['difference']:>+11.3g}  {ci:<20}{_f(r['mdc95'], '{:.3g}'):>8}  {r['verdict']}")
    return "\n".join(lines)


def _read_report(path: str) -> dict:
    """A checked gait report; GaitInputError (one line, naming the file) for anything else."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise GaitInputError(f"{path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise GaitInputError(f"{path}: not a text file (byte {e.start} is not UTF-8); expected a gait report") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, or nesting too deep to parse
        raise GaitInputError(f"{path}: not JSON ({str(e).splitlines()[0][:80]}); expected a gait report") from None
    validate_report(report, path)
    return report


def register(sub) -> None:
    p = sub.add_parser("analyze", help="gait analysis of keypoint files (any subset of the four views)",
                       description="Gait events, cycles, spatiotemporal parameters, 2D kinematics and findings "
                       "from gaitrig-keypoints/1 files; the view comes from each file's header.")
    p.add_argument("files", nargs="+", help="keypoint files (.jsonl), up to one per view")
    p.add_argument("--belt-speed", type=float, required=True, help="treadmill belt speed, m/s")
    p.add_argument("--cameras", help="rig calibration (gaitrig calibrate solve) for 3D angles; without it, 2D")
    p.add_argument("--json", action="store_true", help="print one JSON object (docs/gait-analysis.md)")
    p.add_argument("--out", help="also write the JSON report to this file")
    p.set_defaults(func=run_analyze)
    c = sub.add_parser("compare", help="compare two gait reports (conditions: barefoot, shoes, orthotic)")
    c.add_argument("a", help="report of the reference condition (gaitrig analyze --json output)")
    c.add_argument("b", help="report of the other condition")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=run_compare)
