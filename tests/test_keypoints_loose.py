"""Keypoint files in any valid JSON Lines spelling analyse to the same report as the
compact file `gaitrig infer` writes (rig.keypoints)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rig.gait import analyze_tracks
from rig.keypoints import KeypointFileError, read_track
from rig.sim.walker import SimulatedWalker, WalkerParams

VIEWS = ("left", "right")


@pytest.fixture(scope="module")
def compact(tmp_path_factory):
    d = tmp_path_factory.mktemp("kp")
    w = SimulatedWalker(WalkerParams(noise_px=1.0), fps=60.0, seed=4)  # no missing frames: every line has lm rows
    return d, w.write(d, 8.0, views=VIEWS)


def respell(src, dst, reorder=False, newline="\n", indent=None):
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8", newline="") as g:
        for k, line in enumerate(f):
            d = json.loads(line)
            if reorder and k:
                d = {"lm": d["lm"], "i": d["i"], "t": d["t"]}
            g.write(json.dumps(d, indent=indent) .replace("\n", " ") + newline)
    return dst


def report(paths):
    tracks = {v: read_track(p) for v, p in paths.items()}
    return analyze_tracks(tracks, 1.2).to_dict()


@pytest.mark.parametrize("reorder,newline,indent", [(False, "\n", None), (True, "\n", None),
                                                    (True, "\r\n", None), (False, "\r\n", 1)],
                         ids=["dumps-defaults", "keys-reordered", "crlf", "indented-on-one-line"])
def test_any_spelling_gives_the_same_report(compact, reorder, newline, indent):
    d, paths = compact
    loose = {v: respell(p, d / f"{v}-{reorder}-{len(newline)}-{indent}.jsonl", reorder, newline, indent)
             for v, p in paths.items()}
    assert report(loose) == report(paths)


def test_the_cli_reads_json_dumps_defaults_without_a_traceback(compact):
    d, paths = compact
    loose = [str(respell(p, d / f"{v}-cli.jsonl")) for v, p in paths.items()]
    res = subprocess.run([sys.executable, "-m", "rig.cli", "analyze", *loose, "--belt-speed", "1.2", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-500:]
    assert json.loads(res.stdout)["mode"] == "walking"


def test_a_frame_with_a_missing_key_is_a_clear_error(tmp_path, compact):
    _, paths = compact
    lines = open(paths["left"], encoding="utf-8").read().splitlines()
    d = json.loads(lines[3])
    del d["t"]
    lines[3] = json.dumps(d)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(KeypointFileError, match="line 4 is not a frame"):
        read_track(bad)
