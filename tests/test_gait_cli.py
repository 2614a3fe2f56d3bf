"""`gaitrig analyze` / `gaitrig compare` end to end: keypoint files in, JSON out, bad input."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rig.keypoints import KeypointFileError, iter_frames, read_track
from rig.sim.walker import SimulatedWalker, WalkerParams

ROOT = Path(__file__).resolve().parent.parent
GAITRIG = [sys.executable, "-m", "rig.cli"]


def gaitrig(*args):
    return subprocess.run([*GAITRIG, *map(str, args)], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    d = tmp_path_factory.mktemp("walk")
    w = SimulatedWalker(WalkerParams(noise_px=2, missing_fraction=0.05, swap_fraction=0.05,
                                     rearfoot_eversion_left_deg=10.0), fps=60, seed=3)
    return w, w.write(d, 30)


def _get(d, dotted):
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            raise KeyError(dotted)
        d = d[part]
    return d


def test_analyze_json_has_the_documented_keys(session):
    w, paths = session
    r = gaitrig("analyze", *paths.values(), "--belt-speed", 1.2, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    doc = (ROOT / "docs" / "gait-analysis.md").read_text()
    section = doc.split("## JSON contract", 1)[1].split("## Accuracy", 1)[0]
    keys = [k for line in section.splitlines() if line.startswith("- ") for k in re.findall(r"`([a-z_0-9.]+)`", line.split(" — ")[0])]
    assert len(keys) > 40
    for k in keys:
        _get(d, k)
    tr = w.truth(0, 30)
    assert abs(d["spatiotemporal"]["cadence_steps_per_min"] / tr.cadence_steps_per_min - 1) < 0.01
    assert any(f["code"] == "excessive_rearfoot_eversion" and f["side"] == "left" for f in d["findings"])


def test_analyze_readable_report_and_compare(session, tmp_path):
    w, paths = session
    r = gaitrig("analyze", *paths.values(), "--belt-speed", 1.2, "--out", tmp_path / "a.json")
    assert r.returncode == 0 and "cadence" in r.stdout and "findings" in r.stdout
    w2 = SimulatedWalker(WalkerParams(noise_px=2, rearfoot_eversion_left_deg=8.0), fps=60, seed=8)
    p2 = w2.write(tmp_path / "b", 30)
    assert gaitrig("analyze", *p2.values(), "--belt-speed", 1.2, "--out", tmp_path / "b.json").returncode == 0
    c = gaitrig("compare", tmp_path / "a.json", tmp_path / "b.json", "--json")
    assert c.returncode == 0, c.stderr
    rows = json.loads(c.stdout)["measures"]
    row = next(x for x in rows if x["measure"] == "rearfoot_eversion_2d_deg" and x["side"] == "left")
    assert row["changed"] and row["ci"][0] < -2.0 < row["ci"][1]
    assert gaitrig("compare", tmp_path / "a.json", paths["left"]).returncode == 2


def _one_line_error(r, pattern):
    assert r.returncode == 2, (r.returncode, r.stdout[-200:], r.stderr)
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and re.search(pattern, err[0]), err


def test_bad_input_exits_2_with_one_line(session, tmp_path):
    w, paths = session
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _one_line_error(gaitrig("analyze", empty, "--belt-speed", 1.2), "empty")
    lines = Path(paths["left"]).read_text().splitlines()
    trunc = tmp_path / "trunc.jsonl"
    trunc.write_text("\n".join(lines[:200]) + "\n" + lines[200][:57])
    _one_line_error(gaitrig("analyze", trunc, "--belt-speed", 1.2), r"line 201 is not a frame")
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"format": "other/2", "view": "left"}\n' + "\n".join(lines[1:10]))
    _one_line_error(gaitrig("analyze", foreign, "--belt-speed", 1.2), "not supported")
    nohead = tmp_path / "nohead.jsonl"
    nohead.write_text("\n".join(lines[1:10]))
    _one_line_error(gaitrig("analyze", nohead, "--belt-speed", 1.2), "format")
    other = SimulatedWalker(WalkerParams(), fps=30, seed=1).write(tmp_path / "f30", 3, views=("rear",))
    _one_line_error(gaitrig("analyze", paths["left"], other["rear"], "--belt-speed", 1.2), "different frame rates")
    _one_line_error(gaitrig("analyze", paths["left"], paths["left"], "--belt-speed", 1.2), "second 'left'")


def test_nobody_in_view_reports_nothing_made_up(tmp_path):
    w = SimulatedWalker(WalkerParams(missing_fraction=0.9, missing_run_s=5.0), fps=30, seed=1)
    p = w.write(tmp_path, 4, views=("left",))
    r = gaitrig("analyze", p["left"], "--belt-speed", 1.2, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["spatiotemporal"]["cadence_steps_per_min"] is None
    assert d["unavailable"]


def test_bulk_reader_matches_line_parser(session, tmp_path):
    w, paths = session
    tr = read_track(paths["left"])
    with open(paths["left"]) as f:
        f.readline()
        frames = list(iter_frames(f, "x"))
    np.testing.assert_array_equal(tr.index, [fr[0] for fr in frames])
    np.testing.assert_array_equal(tr.t_s, [fr[1] for fr in frames])
    np.testing.assert_array_equal(tr.lm, np.stack([fr[2] for fr in frames]))
    bad = tmp_path / "bad.jsonl"
    lines = Path(paths["left"]).read_text().splitlines()
    lines[5] = lines[5].replace("]]}", "],[1,2,3,4]]}")
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(KeypointFileError, match="line 6: 'lm' has shape"):
        read_track(bad)


def _sample_keypoints(tmp_path):
    try:
        from edge_models.fetch import sample_path
        video = sample_path("cam01.mp4")
    except Exception as e:  # noqa: BLE001 - assets not fetched
        video = None
        why = str(e)
    if video is None or not Path(video).exists():
        if os.environ.get("CI"):
            pytest.fail("pose2sim sample video missing in CI")
        pytest.skip("pose2sim sample video not fetched")
    out = tmp_path / "cam01.jsonl"
    r = gaitrig("infer", video, "--view", "left", "--out", out)
    assert r.returncode == 0, r.stderr[-500:]
    return out


def test_real_video_has_no_events(tmp_path):
    kp = _sample_keypoints(tmp_path)
    r = gaitrig("analyze", kp, "--belt-speed", 1.2, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["events"]["left"]["heel_strike_s"] == [] and d["events"]["right"]["heel_strike_s"] == []
    assert d["events"]["left"]["toe_off_s"] == [] and d["events"]["right"]["toe_off_s"] == []
    assert d["spatiotemporal"]["cadence_steps_per_min"] is None and d["findings"] == []
