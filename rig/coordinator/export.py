"""Export a stored session as gaitrig-keypoints/1 files, one per view."""
from __future__ import annotations

import json
from pathlib import Path

from rig.bus.payloads import decode_keypoints
from rig.coordinator.storage import Storage
from rig.keypoints import KeypointHeader, write_track


class ExportError(RuntimeError):
    pass


def export_session(storage: Storage, session_id: int, out_dir: Path) -> dict[str, Path]:
    row = storage.session(session_id)
    if row is None:
        raise ExportError(f"no session {session_id} in the database")
    if row.first_pulse_t is None:
        raise ExportError(f"session {session_id} never started its trigger train: nothing to export")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for node in storage.nodes(session_id):
        info_json = storage.node_info(node.view)
        if info_json is None:
            raise ExportError(f"view {node.view}: the node never announced its camera geometry")
        info = json.loads(info_json)
        header = KeypointHeader(view=node.view, fps=row.fps, width=info["width"], height=info["height"],
                                facing=info["facing"], extra={"session_id": session_id,
                                                              "simulated": info["simulated"]})
        frames = (decode_keypoints(p) for p in storage.frames(session_id, node.view))
        path = out_dir / f"session{session_id}-{node.view}.jsonl"
        write_track(path, header, ((f.index, f.t - row.first_pulse_t, f.lm) for f in frames))
        written[node.view] = path
    return written
