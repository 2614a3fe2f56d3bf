"""A stored session as keypoint tracks (for the gait engine) or as gaitrig-keypoints/1
files, one per view (for `gaitrig analyze` and other tools). ``t`` is seconds from the
first trigger pulse."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from rig.bus.payloads import KeypointFrame, PayloadError, decode_keypoints
from rig.coordinator.storage import Storage
from rig.keypoints import N_LANDMARKS, KeypointHeader, KeypointTrack, write_frames


log = logging.getLogger(__name__)


class ExportError(RuntimeError):
    pass


def _readable(payloads: Iterable[bytes], session_id: int, view: str) -> list[KeypointFrame]:
    """Stored frames that still decode. A database written before frames were checked on
    receipt may hold one with a NaN time: it is left out (and logged), not fatal."""
    frames, bad = [], 0
    for payload in payloads:
        try:
            frames.append(decode_keypoints(payload))
        except PayloadError:
            bad += 1
    if bad:
        log.warning("session %d, view %s: %d stored frames are unreadable and left out", session_id, view, bad)
    return frames


def session_tracks(storage: Storage, session_id: int) -> dict[str, KeypointTrack]:
    """Every view that sent frames, as a track; frames in trigger-index order."""
    return dict(iter_view_tracks(storage, session_id))


def iter_view_tracks(storage: Storage, session_id: int) -> Iterator[tuple[str, KeypointTrack]]:
    """(view, track) of each view that sent frames, one view in memory at a time (a patient's
    archive holds many long sessions)."""
    row = storage.session(session_id)
    if row is None:
        raise ExportError(f"no session {session_id} in the database")
    if row.first_pulse_t is None:
        raise ExportError(f"session {session_id} never started its trigger train: nothing to export")
    for node in storage.nodes(session_id):
        frames = _readable(storage.frames(session_id, node.view), session_id, node.view)
        if not frames:
            continue
        info_json = storage.node_info(node.view)
        if info_json is None:
            raise ExportError(f"view {node.view}: the node never announced its camera geometry")
        info = json.loads(info_json)
        header = KeypointHeader(view=node.view, fps=row.fps, width=info["width"], height=info["height"],
                                facing=info["facing"], extra={"session_id": session_id,
                                                              "simulated": info["simulated"]})
        nobody = np.full((N_LANDMARKS, 4), np.nan)
        yield node.view, KeypointTrack(
            header, np.array([f.index for f in frames], dtype=np.int64),
            np.array([f.t - row.first_pulse_t for f in frames]),
            np.stack([nobody if f.lm is None else f.lm for f in frames]))


def keypoint_file_name(session_id: int, view: str) -> str:
    return f"session{session_id}-{view}.jsonl"


def write_view(f: IO[str], track: KeypointTrack) -> int:
    """One view's gaitrig-keypoints/1 file onto an open text stream; returns its frame count."""
    return write_frames(f, track.header, zip(track.index, track.t_s, track.lm))


def export_session(storage: Storage, session_id: int, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for view, track in iter_view_tracks(storage, session_id):
        path = out_dir / keypoint_file_name(session_id, view)
        with open(path, "w", encoding="utf-8") as f:
            write_view(f, track)
        written[view] = path
    return written
