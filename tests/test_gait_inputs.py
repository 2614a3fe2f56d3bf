"""Issue 9: `gaitrig analyze` / `compare` given hostile files — binary, NaN or repeated or
reversed times, landmark rows of 32 and 34, reports with wrong types — answer exit 2 and
one line naming the file and the frame or key, never a traceback or a made-up report; and
a Hypothesis fuzz over mutated keypoint files and reports, run through the real CLI."""
from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rig.cli import main
from rig.sim.walker import SimulatedWalker, WalkerParams

ROOT = Path(__file__).resolve().parent.parent
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=6)


class Lines(list):
    def __repr__(self) -> str:  # keeps Hypothesis' failure reports readable
        return f"<{len(self)} keypoint lines>"


class Report(dict):
    def __repr__(self) -> str:
        return "<gait report>"


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """A 3 s walk seen from the left, 30 fps: header line + 90 frame lines."""
    d = tmp_path_factory.mktemp("walk")
    path = SimulatedWalker(WalkerParams(noise_px=1), fps=30, seed=4).write(d, 3, views=("left",))["left"]
    return Lines(Path(path).read_text().splitlines())


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    paths = SimulatedWalker(WalkerParams(noise_px=1), fps=60, seed=2).write(d, 12, views=("left", "right"))
    out = d / "r.json"
    assert run("analyze", *paths.values(), "--belt-speed", "1.2", "--out", out)[0] == 0
    return Report(json.loads(out.read_text()))


def run(*args) -> tuple[int, str, str]:
    """The CLI in this process (fast enough to fuzz); an escaping exception fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def one_line_error(result, expected: str) -> None:
    code, _, err = result
    assert code == 2 and err.count("\n") == 1, (code, err)
    assert err == f"gaitrig: error: {expected}\n"


def write(tmp_path: Path, lines: list[str], name: str = "kp.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def frame(line: str, **changes) -> str:
    d = json.loads(line)
    d.update(changes)
    return json.dumps(d, separators=(",", ":"))


def analyze(path: Path):
    return run("analyze", path, "--belt-speed", "1.2")


# --- each defect of the issue ------------------------------------------------------------------
def test_binary_file_is_one_line(tmp_path):
    p = tmp_path / "video.jsonl"
    p.write_bytes(b"\x00\x01\x80\xff" * 100)
    one_line_error(analyze(p), f"{p}: not a text file (byte 2 is not UTF-8); expected gaitrig-keypoints/1 JSON lines")


def test_nan_time_is_rejected_naming_the_frame(walk, tmp_path):
    lines = walk.copy()
    lines[5] = lines[5].replace(f'"t":{json.loads(lines[5])["t"]}', '"t":NaN')
    p = write(tmp_path, lines)
    one_line_error(analyze(p), f"{p}: frame 5 (i=4): time nan is not a number of seconds (1 such frames)")


def test_repeated_time_is_rejected(walk, tmp_path):
    lines = walk.copy()
    lines[8] = frame(lines[8], t=json.loads(lines[7])["t"])
    p = write(tmp_path, lines)
    one_line_error(analyze(p), f"{p}: frame 8 (i=7): time 0.2 repeats the previous frame's 0.2; "
                   "frames must be in time order, each once (1 such frames)")


def test_repeated_trigger_index_is_rejected(walk, tmp_path):
    lines = walk.copy()
    lines[3] = frame(lines[3], i=1)
    p = write(tmp_path, lines)
    one_line_error(analyze(p), f"{p}: frame 3 (i=1): trigger index 1 repeats the previous frame's 1; "
                   "frames must be in time order, each once (1 such frames)")


def test_reversed_frames_are_rejected_not_analysed_as_standing(walk, tmp_path):
    p = write(tmp_path, walk[:1] + walk[:0:-1])
    one_line_error(analyze(p), f"{p}: frame 2 (i=88): time 2.93333 is before the previous frame's 2.96667; "
                   "frames must be in time order, each once (89 such frames)")


def test_landmark_rows_of_32_and_34_are_rejected_with_the_line(walk, tmp_path):
    lines = walk.copy()
    rows = json.loads(lines[10])["lm"]
    lines[10] = frame(lines[10], lm=rows[:32])
    lines[11] = frame(lines[11], lm=rows + rows[:1])
    p = write(tmp_path, lines)
    one_line_error(analyze(p), f"{p}: line 11: 'lm' has shape (32, 4), expected (33, 4)")


def test_infinite_landmark_and_frame_rate_are_rejected(walk, tmp_path):
    lines = walk.copy()
    rows = json.loads(lines[4])["lm"]
    rows[2][0] = math.inf
    lines[4] = json.dumps({"i": 3, "t": json.loads(lines[4])["t"], "lm": rows})
    p = write(tmp_path, lines)
    one_line_error(analyze(p), f"{p}: frame 4 (i=3): landmark values must be finite numbers "
                   "(NaN/Infinity found); use \"lm\": null for a frame with nobody")
    header = json.loads(walk[0])
    header["fps"] = math.inf
    q = write(tmp_path, [json.dumps(header)] + walk[1:], "fps.jsonl")
    one_line_error(analyze(q), f"{q}: header fps must be a number in [1, 1000], got inf")
    header["fps"] = 1e-300
    one_line_error(analyze(write(tmp_path, [json.dumps(header)] + walk[1:], "fps.jsonl")),
                   f"{q}: header fps must be a number in [1, 1000], got 1e-300")


@pytest.mark.parametrize("per_stride, message", [
    ([1, 2], "per_stride must be an object, not list"),
    ({"left": {"stride_time_s": "1.1"}}, "per_stride.left.stride_time_s must be a list of numbers, not str"),
    ({"right": {"step_time_s": [0.5, "x"]}}, "per_stride.right.step_time_s[1] must be a finite number or null, not 'x'"),
    ({"left": {"stance_pct": [60, True]}}, "per_stride.left.stance_pct[1] must be a finite number or null, not True"),
    ({"left": {"stance_pct": [60, math.nan]}}, "per_stride.left.stance_pct[1] must be a finite number or null, not nan"),
    ({"left": 3}, "per_stride.left must be an object, not int"),
    ({"right": None}, "per_stride.right must be an object, not NoneType"),
])
def test_reports_with_wrong_types_are_one_line(report, tmp_path, per_stride, message):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(report))
    bad.write_text(json.dumps({**report, "per_stride": per_stride}))
    one_line_error(run("compare", good, bad), f"{bad}: {message}")


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(i=10**30), "a trigger index does not fit in 64 bits"),
    (lambda d: d.update(t=-1e308), "frames span 1e+308 s, more than 86400 s; times must be seconds on the session clock"),
    (lambda d: d.update(lm=[[1e308, 1.0, 1.0, 0.5]] * 33), "frame 1 (i=0): landmark x, y, z must be within ±100000 px"),
    (lambda d: d.update(lm=[[1.0, 1.0, 1.0, 7.0]] * 33), "frame 1 (i=0): landmark visibility must be in 0..1"),
])
def test_absurd_numbers_in_the_first_frame(walk, tmp_path, change, message):
    d = json.loads(walk[1])
    change(d)
    p = write(tmp_path, walk[:1] + [json.dumps(d)] + walk[2:])
    one_line_error(analyze(p), f"{p}: {message}")


def test_binary_and_deeply_nested_reports_are_one_line(report, tmp_path):
    good, binary, deep = tmp_path / "good.json", tmp_path / "bin.json", tmp_path / "deep.json"
    good.write_text(json.dumps(report))
    binary.write_bytes(b"\xff\xfe" * 10)
    deep.write_text("[" * 100_000 + "]" * 100_000)
    one_line_error(run("compare", binary, good), f"{binary}: not a text file (byte 0 is not UTF-8); expected a gait report")
    code, _, err = run("compare", good, deep)
    assert code == 2 and err.startswith(f"gaitrig: error: {deep}: not JSON (") and err.count("\n") == 1


def test_unwritable_out_is_one_line(walk, tmp_path):
    p = write(tmp_path, walk)
    out = tmp_path / "missing" / "r.json"
    one_line_error(run("analyze", p, "--belt-speed", "1.2", "--out", out), f"--out {out}: No such file or directory")


def test_as_a_process_no_traceback(tmp_path):
    p = tmp_path / "b.jsonl"
    p.write_bytes(bytes(range(256)))
    r = subprocess.run([sys.executable, "-m", "rig.cli", "analyze", str(p), "--belt-speed", "1"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


# --- fuzz ----------------------------------------------------------------------------------------
def _mutate_frame(line: str, draw) -> str:
    """One field of a JSON line (header or frame) replaced, dropped or added."""
    try:
        d = json.loads(line)
    except ValueError:
        return line
    if not isinstance(d, dict) or not d:
        return draw(st.text(max_size=20))
    key = draw(st.sampled_from(["lm_value", "extra", "drop", *sorted(d)]))
    if key == "lm_value" and isinstance(d.get("lm"), list) and d["lm"] and isinstance(d["lm"][0], list):
        row = d["lm"][draw(st.integers(0, len(d["lm"]) - 1))]
        if isinstance(row, list) and row:
            row[draw(st.integers(0, len(row) - 1))] = draw(JSON_VALUES)
    elif key == "drop":
        d.pop(draw(st.sampled_from(sorted(d))))
    elif key == "lm_value":
        return line
    elif key == "extra":
        d[draw(st.text(max_size=5))] = draw(JSON_VALUES)
    elif key != "lm_value":
        d[key] = draw(JSON_VALUES | st.floats())
    return json.dumps(d)


@st.composite
def mutated_files(draw, lines: list[str]) -> bytes:
    lines = lines.copy()
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["frame", "header", "swap", "duplicate", "delete", "garbage", "bytes"]))
        k = draw(st.integers(1, len(lines) - 1))
        if how == "frame":
            lines[k] = _mutate_frame(lines[k], draw)
        elif how == "header":
            lines[0] = _mutate_frame(lines[0], draw)
        elif how == "swap":
            j = draw(st.integers(1, len(lines) - 1))
            lines[k], lines[j] = lines[j], lines[k]
        elif how == "duplicate":
            lines.insert(k, lines[k])
        elif how == "delete" and len(lines) > 2:
            del lines[k]
        elif how == "garbage":
            lines[k] = draw(st.text(max_size=40))
        else:
            return ("\n".join(lines)).encode() + draw(st.binary(min_size=1, max_size=40))
    return ("\n".join(lines) + "\n").encode()


def assert_exit_0_or_one_line(result) -> None:
    code, _, err = result
    assert code in (0, 2), (code, err[-500:])
    if code == 2:
        assert err.startswith("gaitrig: error: ") and err.count("\n") == 1, err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutated_keypoint_files(walk, tmp_path, data):
    p = tmp_path / "fuzz.jsonl"
    p.write_bytes(data.draw(mutated_files(walk)))
    assert_exit_0_or_one_line(analyze(p))


@st.composite
def mutated_reports(draw, report: dict) -> dict:
    r = json.loads(json.dumps(report))
    for _ in range(draw(st.integers(1, 3))):
        side = draw(st.sampled_from(["left", "right", "pelvic_obliquity_2d_deg", "junk"]))
        target = r.setdefault("per_stride", {})
        if not isinstance(target, dict):
            break
        if side in ("pelvic_obliquity_2d_deg", "junk") or draw(st.booleans()):
            target[side] = draw(JSON_VALUES)
        elif isinstance(target.get(side), dict):
            measure = draw(st.sampled_from(["stride_time_s", "step_length_m", "knee_fppa_2d_deg", "x"]))
            values = target[side].get(measure)
            if isinstance(values, list) and values and draw(st.booleans()):
                values[draw(st.integers(0, len(values) - 1))] = draw(JSON_VALUES)
            else:
                target[side][measure] = draw(JSON_VALUES)
    if draw(st.integers(0, 9)) == 0:
        r = draw(JSON_VALUES)
    return r


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutated_reports(report, tmp_path, data):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(report))
    b.write_text(json.dumps(data.draw(mutated_reports(report))))
    assert_exit_0_or_one_line(run("compare", a, b))
    assert_exit_0_or_one_line(run("compare", b, a, "--json"))
