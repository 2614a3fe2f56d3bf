"""The bulk frame parser (rig.keypoints_bulk) decodes exactly what ``json.loads`` does, in
any spelling, and refuses (None: the line reader then names the defect) every line that is
not a plain frame — so speed never lets a malformed file through."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from rig.keypoints_bulk import parse_frames

ORDERS = [("i", "t", "lm"), ("lm", "t", "i"), ("t", "lm", "i")]
SPACINGS = [(",", ":"), (", ", ": ")]


def line(i, t, rows, order=ORDERS[0], sep=SPACINGS[0]) -> str:
    d = {"i": i, "t": t, "lm": rows}
    return json.dumps({k: d[k] for k in order}, separators=sep)


def number(rng: random.Random):
    r = rng.random()
    if r < 0.3:
        return round(rng.uniform(-5000, 5000), rng.randint(0, 3))  # what format_frame writes
    if r < 0.5:
        return rng.uniform(-1e6, 1e6)  # 17 significant digits
    if r < 0.6:
        return rng.randint(-10**9, 10**9)
    return rng.choice([0.0, -0.0, 1.0, 1e-7, 123456789.0, 1e20, 5e-324, 1.7976931348623157e308, 12345678.9, 0.1])


@pytest.mark.parametrize("seed", range(20))
def test_values_equal_json_loads_in_any_spelling(seed):
    rng = random.Random(seed)
    frames = [(i, number(rng), [[number(rng) for _ in range(4)] for _ in range(33)] if rng.random() > 0.1 else None)
              for i in range(rng.randint(1, 40))]
    text = ("\r\n" if seed % 2 else "\n").join(line(*f, rng.choice(ORDERS), rng.choice(SPACINGS)) for f in frames)
    index, t_s, lm = parse_frames((text + "\n\n").encode())
    expected = np.array([f[2] if f[2] is not None else np.full((33, 4), np.nan) for f in frames], float)
    assert index.tolist() == [f[0] for f in frames]
    assert t_s.tolist() == [float(f[1]) for f in frames]
    assert np.array_equal(lm, expected, equal_nan=True)
    assert np.array_equal(np.signbit(lm), np.signbit(expected))  # -0.0 stays -0.0


ROWS = [[1.5, 2.5, 0.0, 0.9]] * 33


@pytest.mark.parametrize("token", ["1e5", "1E-5", "-0", "0", "-0.0", "123456789012.5", "1.5e+3", "0e0", "-1234.56"])
def test_every_json_number_is_read(token):
    text = line(0, 0.0, ROWS).replace("[[1.5", "[[" + token, 1)
    assert parse_frames(text.encode())[2][0, 0, 0] == float(token)


@pytest.mark.parametrize("token", ["01", "1.", ".5", "+1", "-", "1..2", "--1", "1-2", "00.5", "-01", "1/2", "1e",
                                   "NaN", "Infinity", "-Infinity", "9.", "1 2", '"1"', "true", "null"])
def test_what_json_refuses_or_no_landmark_is_not_read(token):
    text = line(0, 0.0, ROWS).replace("[[1.5", "[[" + token, 1)
    assert parse_frames(text.encode()) is None


@pytest.mark.parametrize("text", [
    line(0, 0.0, ROWS[:32]), line(0, 0.0, ROWS + ROWS[:1]), line(0, 0.0, [r[:3] for r in ROWS]),
    line(0, 0.0, ROWS).replace('"lm"', '"l m"'), line(0, 0.0, ROWS).replace('"t":0.0,', ""),
    line(0, 0.0, ROWS)[:-1] + ',"x":1}', line(0, 0.0, ROWS).replace('"i":0', '"i":0,"i":1'),
    line(0, 0.0, None) + line(1, 0.1, None), line(0.5, 0.0, None), line(2**60, 0.0, None), "[]",
])
def test_lines_that_are_not_plain_frames_go_to_the_line_reader(text):
    assert parse_frames((line(0, 0.0, ROWS) + "\n" + text + "\n").encode()) is None
