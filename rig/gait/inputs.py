"""Checks on what ``gaitrig analyze`` and ``gaitrig compare`` read, after parsing and
before any analysis: a parsed file can still be nonsense (times that are NaN, repeat or run
backwards, an Infinity frame rate, a report whose per-stride values are strings), and the
analysis would then answer with a traceback or, worse, with a plausible report ("standing
for -8 s"). Each check raises :class:`GaitInputError` with one line naming the file and
the frame or key. Pure: no I/O except :func:`read_checked`, which reads a file.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rig.keypoints import KeypointFileError, KeypointTrack, read_track

from ._signals import SIDES
from .estimates import PER_SIDE_MEASURES as COMPARE_MEASURES
from .report import GaitInputError

MIN_FPS, MAX_FPS = 1.0, 1000.0  # below 1 fps there is no gait to see; no rig camera is faster
MAX_DURATION_S = 24 * 3600.0  # one recording, however long the clinic day
MAX_COORD_PX = 100_000.0  # landmark x, y, z: far outside any image, yet finite arithmetic
REPORT_FORMAT = "gaitrig-gait/1"


def read_checked(path: str | Path) -> KeypointTrack:
    """``read_track`` then :func:`validate_track`; a binary file is a KeypointFileError."""
    try:
        track = read_track(path)
    except UnicodeDecodeError as e:
        raise KeypointFileError(f"{path}: not a text file (byte {e.start} is not UTF-8); "
                                "expected gaitrig-keypoints/1 JSON lines") from None
    except OverflowError:
        raise KeypointFileError(f"{path}: a trigger index does not fit in 64 bits") from None
    validate_track(track, str(path))
    return track


def _frame(track: KeypointTrack, k: int) -> str:
    return f"frame {k + 1} (i={int(track.index[k])})"


def validate_track(track: KeypointTrack, source: str) -> None:
    """Frame rate and image size possible; times finite, strictly increasing, within a day;
    trigger indices strictly increasing; landmarks finite and near the image, visibility 0..1."""
    h = track.header
    if not (math.isfinite(h.fps) and MIN_FPS <= h.fps <= MAX_FPS):
        raise GaitInputError(f"{source}: header fps must be a number in [{MIN_FPS:g}, {MAX_FPS:g}], got {h.fps}")
    if h.width <= 0 or h.height <= 0:
        raise GaitInputError(f"{source}: header width and height must be > 0, got {h.width} x {h.height}")
    bad = np.flatnonzero(~np.isfinite(track.t_s))
    if bad.size:
        raise GaitInputError(f"{source}: {_frame(track, bad[0])}: time {track.t_s[bad[0]]} is not a number "
                             f"of seconds ({bad.size} such frames)")
    for name, values in (("time", track.t_s), ("trigger index", track.index)):
        step = np.diff(values)
        back = np.flatnonzero(step <= 0)
        if back.size:
            k = int(back[0]) + 1
            how = "repeats" if step[k - 1] == 0 else "is before"
            raise GaitInputError(f"{source}: {_frame(track, k)}: {name} {values[k]:g} {how} the previous "
                                 f"frame's {values[k - 1]:g}; frames must be in time order, each once "
                                 f"({back.size} such frames)")
    span_s = float(track.t_s[-1] - track.t_s[0])
    if span_s > MAX_DURATION_S:
        raise GaitInputError(f"{source}: frames span {span_s:.3g} s, more than {MAX_DURATION_S:g} s; "
                             "times must be seconds on the session clock")
    _check_landmarks(track, source)


def _check_landmarks(track: KeypointTrack, source: str) -> None:
    xyz_max = np.abs(track.lm[:, :, :3]).max(axis=(1, 2))  # NaN where any value is NaN
    vis = track.lm[:, :, 3]
    frame_ok = (xyz_max <= MAX_COORD_PX) & (vis.min(axis=1) >= 0) & (vis.max(axis=1) <= 1)
    if (frame_ok | ~track.found).all():
        return  # one pass for a good file; the checks below name the first bad frame
    found = np.flatnonzero(track.found)
    lm = track.lm[found]
    checks = ((np.isfinite(lm).all(axis=(1, 2)), "landmark values must be finite numbers (NaN/Infinity "
               "found); use \"lm\": null for a frame with nobody"),
              ((np.abs(lm[:, :, :3]) <= MAX_COORD_PX).all(axis=(1, 2)),
               f"landmark x, y, z must be within ±{MAX_COORD_PX:g} px"),
              (((lm[:, :, 3] >= 0) & (lm[:, :, 3] <= 1)).all(axis=1), "landmark visibility must be in 0..1"))
    for ok, why in checks:
        if not ok.all():
            k = int(found[np.argmin(ok)])
            raise GaitInputError(f"{source}: {_frame(track, k)}: {why}")


def _numbers(value, where: str) -> list:
    """A per-stride list: numbers (finite) or null, nothing else."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise GaitInputError(f"{where} must be a list of numbers, not {type(value).__name__}")
    for i, x in enumerate(value):
        ok = x is None or (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x))
        if not ok:
            raise GaitInputError(f"{where}[{i}] must be a finite number or null, not {x!r:.40}")
    return value


def _mapping(value, where: str, null_ok: bool = False) -> dict:
    if value is None and null_ok:
        return {}
    if not isinstance(value, dict):
        raise GaitInputError(f"{where} must be an object, not {type(value).__name__}")
    return value


def validate_report(report, source: str) -> None:
    """A gait report as ``compare`` needs it: the format, and ``per_stride`` holding lists of
    finite numbers (or null) wherever a compared measure is."""
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        raise GaitInputError(f"{source}: not a {REPORT_FORMAT} report (from `gaitrig analyze --json`)")
    per_stride = _mapping(report.get("per_stride"), f"{source}: per_stride", null_ok=True)
    for side in SIDES:
        measures = _mapping(per_stride.get(side, {}), f"{source}: per_stride.{side}")
        for m in COMPARE_MEASURES:
            _numbers(measures.get(m), f"{source}: per_stride.{side}.{m}")
    _numbers(per_stride.get("pelvic_obliquity_2d_deg"), f"{source}: per_stride.pelvic_obliquity_2d_deg")
