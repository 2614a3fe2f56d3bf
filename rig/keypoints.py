"""The keypoint file format ``gaitrig-keypoints/1`` (JSON Lines), one file per view.

Line 1 is a header; every further line is one frame::

    {"format": "gaitrig-keypoints/1", "view": "left", "fps": 60.0,
     "width": 1456, "height": 1088, "facing": "right"}
    {"i": 0, "t": 0.0, "lm": [[x_px, y_px, z, visibility], ... 33 rows]}
    {"i": 1, "t": 0.016667, "lm": null}

``i`` is the trigger index, ``t`` seconds on the session clock, ``lm`` the 33 BlazePose
landmarks in image pixels (subject's left = odd indices 11…31) or ``null`` where nobody
was found. ``gaitrig infer`` writes it, the coordinator exports it, ``gaitrig analyze``
reads it. This module is the single definition of the format.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

FORMAT = "gaitrig-keypoints/1"
VIEWS = ("left", "right", "rear", "front")
SIDE_VIEWS = ("left", "right")
FACINGS = ("left", "right")
N_LANDMARKS = 33


class KeypointFileError(ValueError):
    """A keypoint file that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class KeypointHeader:
    view: str
    fps: float
    width: int
    height: int
    facing: str | None = None  # side views: the way the walker faces in the image
    format: str = FORMAT
    extra: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> str:
        d = {k: v for k, v in asdict(self).items() if k != "extra"}
        d = {"format": d.pop("format"), **d, **self.extra}
        return json.dumps(d, separators=(",", ":"))


@dataclass
class KeypointTrack:
    """A whole view in memory: ``lm`` is (n_frames, 33, 4) with NaN rows where nobody was found."""

    header: KeypointHeader
    index: np.ndarray  # (n,) trigger indices, int64
    t_s: np.ndarray  # (n,) seconds
    lm: np.ndarray  # (n, 33, 4) float64

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.lm[:, 0, 0])


def format_frame(index: int, t_s: float, lm: np.ndarray | None) -> str:
    """One frame line; pixel coordinates to 0.01 px, z and visibility to 0.001."""
    if lm is None or np.isnan(lm[0, 0]):
        rows = None
    else:
        rows = [[round(float(x), 2), round(float(y), 2), round(float(z), 3), round(float(v), 3)]
                for x, y, z, v in lm]
    return json.dumps({"i": int(index), "t": round(float(t_s), 6), "lm": rows}, separators=(",", ":"))


def write_track(path: Path | str, header: KeypointHeader,
                frames: Iterable[tuple[int, float, np.ndarray | None]]) -> int:
    """Write a header and frames; returns the number of frames written."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(header.to_json() + "\n")
        for index, t_s, lm in frames:
            f.write(format_frame(index, t_s, lm) + "\n")
            n += 1
    return n


def parse_header(line: str, source: str = "<keypoints>") -> KeypointHeader:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise KeypointFileError(f"{source}: line 1 is not JSON ({e.msg}); expected a {FORMAT} header") from None
    if not isinstance(d, dict) or "format" not in d:
        raise KeypointFileError(f"{source}: line 1 has no 'format'; expected a {FORMAT} header")
    if d["format"] != FORMAT:
        raise KeypointFileError(f"{source}: format {d['format']!r} is not supported; expected {FORMAT!r}")
    try:
        view, fps, width, height = d["view"], float(d["fps"]), int(d["width"]), int(d["height"])
    except (KeyError, TypeError, ValueError) as e:
        raise KeypointFileError(f"{source}: header needs view, fps, width and height ({e})") from None
    if view not in VIEWS:
        raise KeypointFileError(f"{source}: header view {view!r} is not one of {', '.join(VIEWS)}")
    if not fps > 0:
        raise KeypointFileError(f"{source}: header fps must be > 0, got {fps}")
    facing = d.get("facing")
    if facing is not None and facing not in FACINGS:
        raise KeypointFileError(f"{source}: header facing {facing!r} is not 'left' or 'right'")
    if view in SIDE_VIEWS and facing is None:
        raise KeypointFileError(f"{source}: side view {view!r} needs 'facing' in the header")
    known = {"format", "view", "fps", "width", "height", "facing"}
    return KeypointHeader(view=view, fps=fps, width=width, height=height, facing=facing,
                          extra={k: v for k, v in d.items() if k not in known})


def _parse_frame(line: str, lineno: int, source: str) -> tuple[int, float, np.ndarray]:
    try:
        d = json.loads(line)
        index, t_s, rows = int(d["i"]), float(d["t"]), d["lm"]
        if rows is None:
            return index, t_s, np.full((N_LANDMARKS, 4), np.nan)
        lm = np.asarray(rows, dtype=np.float64)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise KeypointFileError(f"{source}: line {lineno} is not a frame ({type(e).__name__}: {e})") from None
    if lm.shape != (N_LANDMARKS, 4):
        raise KeypointFileError(f"{source}: line {lineno}: 'lm' has shape {lm.shape}, expected (33, 4)")
    return index, t_s, lm


def iter_frames(f: IO[str], source: str) -> Iterator[tuple[int, float, np.ndarray]]:
    for lineno, line in enumerate(f, start=2):
        if line.strip():
            yield _parse_frame(line, lineno, source)


def read_track(path: Path | str) -> KeypointTrack:
    """Read a whole file; raises KeypointFileError naming the file and line on any defect.

    Frames written by :func:`format_frame` are parsed in bulk (numbers straight into numpy);
    any file the bulk parser does not vouch for is read line by line with the same errors.
    """
    source = str(path)
    with open(path, encoding="utf-8") as f:
        first = f.readline()
        if not first.strip():
            raise KeypointFileError(f"{source}: file is empty; expected a {FORMAT} header")
        header = parse_header(first, source)
        rest = f.read()
    compact = rest.startswith('{"i":') and not any(c in rest for c in " \t\r")
    if not compact:  # another spelling of the same JSON: rewrite it compactly first
        rest_compact = _canonical_frames(rest)
        fast = _read_frames_bulk(rest_compact) if rest_compact is not None else None
    else:
        fast = _read_frames_bulk(rest)
    if fast is not None:
        index, t_s, lm = fast
    else:
        import io
        frames = list(iter_frames(io.StringIO(rest), source))
        if not frames:
            raise KeypointFileError(f"{source}: header but no frames")
        index = np.array([fr[0] for fr in frames], dtype=np.int64)
        t_s = np.array([fr[1] for fr in frames], dtype=np.float64)
        lm = np.stack([fr[2] for fr in frames])
    return KeypointTrack(header, index, t_s, lm)


_SEPARATORS = str.maketrans("[],", "   ")
_WHITESPACE = str.maketrans("", "", " \t\r")
_FRAME_KEYS = re.compile(r'"(i|t|lm)":')


def _canonical_frames(text: str) -> str | None:
    """Frame lines rewritten in :func:`format_frame`'s compact form (no whitespace, keys
    in the order i, t, lm), so that any spacing, key order or CRLF line ends reach the bulk
    parser; None when a line is not made of exactly those three keys (the line parser then
    judges it and names the defect). Frame lines hold no strings but their keys, so
    dropping whitespace cannot change a value."""
    text = text.translate(_WHITESPACE)
    out = []
    for ln in text.split("\n"):
        if not ln:
            continue
        if ln.startswith('{"i":') and ',"t":' in ln and ',"lm":' in ln and ln.index(',"t":') < ln.index(',"lm":'):
            out.append(ln)
            continue
        if not (ln.startswith("{") and ln.endswith("}")):
            return None
        keys = list(_FRAME_KEYS.finditer(ln))
        if sorted(k.group(1) for k in keys) != ["i", "lm", "t"]:
            return None
        vals = {}
        for k, nxt in zip(keys, keys[1:] + [None]):
            end = (nxt.start() - 1) if nxt is not None else len(ln) - 1
            if nxt is not None and ln[end] != ",":
                return None
            vals[k.group(1)] = ln[k.end():end]
        out.append('{"i":' + vals["i"] + ',"t":' + vals["t"] + ',"lm":' + vals["lm"] + "}")
    return "\n".join(out) + "\n"


def _read_frames_bulk(text: str):
    """(index, t_s, lm) for text made only of ``format_frame`` lines, else None."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return None
    null = np.fromiter((ln.endswith(',"lm":null}') for ln in lines), bool, len(lines))
    ok = all(ln.startswith('{"i":') and ln.endswith("]]}") for ln, nl in zip(lines, null) if not nl)
    if not ok or not all(ln.startswith('{"i":') and ',"lm":' in ln for ln in lines):
        return None
    n = len(lines)
    found = ~null
    if not all(',"lm":' in ln and ',"t":' in ln for ln in lines):
        return None
    head = [ln[5:ln.index(',"lm":')].replace(',"t":', " ") for ln in lines]
    try:
        it = np.array(" ".join(head).split(), dtype=np.float64).reshape(n, 2)
    except ValueError:
        return None
    if found.any():
        body = " ".join(ln[ln.index(',"lm":') + 8:-3] for ln, f in zip(lines, found) if f)
        nf = int(found.sum())
        # every frame must hold exactly 33 rows of 4 (counted by the rows' separators, per
        # line: a frame of 32 rows and one of 34 must not pass as two of 33)
        rows_ok = all(ln.count("],[") == N_LANDMARKS - 1 for ln, f in zip(lines, found) if f)
        if not rows_ok or any(c in body for c in "naNIe"):
            return None  # odd shapes, NaN/Infinity/null or exponents: the line parser judges
        try:
            vals = np.fromstring(body.translate(_SEPARATORS), sep=" ")
        except ValueError:
            return None
        if vals.size != nf * N_LANDMARKS * 4:
            return None
    lm = np.full((n, N_LANDMARKS, 4), np.nan)
    if found.any():
        lm[found] = vals.reshape(-1, N_LANDMARKS, 4)
    index = it[:, 0]
    if not np.all((index == np.round(index)) & (np.abs(index) < 2**53)):
        return None  # fractions, or too large for a float to hold exactly: the line parser judges
    return index.astype(np.int64), it[:, 1], lm
