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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from .keypoints_bulk import parse_frames

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
    with open(path, "w", encoding="utf-8") as f:
        return write_frames(f, header, frames)


def write_frames(f: IO[str], header: KeypointHeader, frames: Iterable[tuple[int, float, np.ndarray | None]]) -> int:
    """A keypoint file onto an open text stream (a file, or a member of a patient's archive)."""
    n = 0
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

    Frame lines are parsed in bulk (:mod:`rig.keypoints_bulk`: any spacing, key order or
    line end, numbers straight into numpy); a file the bulk parser does not vouch for is
    read line by line with ``json.loads``, which names the defect.
    """
    source = str(path)
    with open(path, "rb") as f:
        data = f.read()
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).decode("utf-8")
    if not first.strip():
        raise KeypointFileError(f"{source}: file is empty; expected a {FORMAT} header")
    header = parse_header(first, source)
    fast = parse_frames(data[end + 1:]) if end >= 0 else None
    if fast is not None:
        return KeypointTrack(header, *fast)
    import io
    lines = io.StringIO(data.decode("utf-8"), newline=None)
    lines.readline()
    frames = list(iter_frames(lines, source))
    if not frames:
        raise KeypointFileError(f"{source}: header but no frames")
    index = np.array([fr[0] for fr in frames], dtype=np.int64)
    t_s = np.array([fr[1] for fr in frames], dtype=np.float64)
    lm = np.stack([fr[2] for fr in frames])
    return KeypointTrack(header, index, t_s, lm)
