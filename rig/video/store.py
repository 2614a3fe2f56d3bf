"""A node's recorded video on its own disk: per view and session, one file of JPEG pictures
written back to back (``frames.mjpg``, playable as MJPEG by common players) and an index
of (trigger index, offset, length) records, so any range of trigger indices is read without
decoding anything. Written append-only; a record whose bytes did not all reach the disk
(power cut mid-write) is ignored when read."""
from __future__ import annotations

import json
import re
import shutil
import struct
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

INDEX_RECORD = struct.Struct("<IQI")  # trigger index u32, offset u64, length u32
FRAMES_FILE, INDEX_FILE, META_FILE = "frames.mjpg", "index.bin", "meta.json"
FOLDER = re.compile(r"^session-(\d{1,19})$")


@dataclass(frozen=True)
class ClipMeta:
    session_id: int
    view: str
    fps: float
    width: int  # of the recorded pictures, px
    height: int
    source_width: int  # of the camera's frames, px: keypoints are in these
    source_height: int
    started_t: float  # Unix s, when recording began
    codec: str = "jpeg"


@dataclass(frozen=True)
class StoredClip:
    """A session's video on disk, as the retention bound sees it."""
    session_id: int
    bytes: int
    modified_t: float  # Unix s of the last frame written


class ClipWriter:
    """Appends one session's pictures; thread-safe with readers of the same files."""

    def __init__(self, folder: Path, meta: ClipMeta):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / META_FILE).write_text(json.dumps(asdict(meta)), encoding="utf-8")
        self.folder, self.meta = folder, meta
        self._frames = open(folder / FRAMES_FILE, "ab")
        self._index = open(folder / INDEX_FILE, "ab")
        self._offset = self._frames.tell()
        self.bytes = self._offset
        self.frames = 0
        self._lock = threading.Lock()

    def add(self, index: int, jpeg: bytes) -> None:
        with self._lock:
            self._frames.write(jpeg)
            self._frames.flush()  # the bytes before the record that points at them
            self._index.write(INDEX_RECORD.pack(index, self._offset, len(jpeg)))
            self._index.flush()
            self._offset += len(jpeg)
            self.bytes = self._offset
            self.frames += 1

    def close(self) -> None:
        with self._lock:
            self._frames.close()
            self._index.close()


class ClipReader:
    """One session's pictures by trigger index (the first of a repeated index is kept)."""

    def __init__(self, folder: Path):
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        self.meta = ClipMeta(**meta)
        self.folder = folder
        raw = (folder / INDEX_FILE).read_bytes()
        raw = raw[:len(raw) - len(raw) % INDEX_RECORD.size]
        records = np.frombuffer(raw, dtype=np.dtype([("i", "<u4"), ("o", "<u8"), ("n", "<u4")]))
        size = (folder / FRAMES_FILE).stat().st_size
        records = records[records["o"] + records["n"] <= size]
        order = np.argsort(records["i"], kind="stable")
        records = records[order]
        keep = np.ones(len(records), bool)
        keep[1:] = records["i"][1:] != records["i"][:-1]
        self._records = records[keep]
        self.bytes = size

    @property
    def indices(self) -> np.ndarray:
        return self._records["i"]

    def summary(self) -> dict:
        idx = self.indices
        return {"session_id": self.meta.session_id, "view": self.meta.view,
                "first_index": int(idx[0]) if len(idx) else None, "last_index": int(idx[-1]) if len(idx) else None,
                "frames": int(len(idx)), "bytes": self.bytes}

    def frames(self, first: int, last: int) -> Iterator[tuple[int, bytes]]:
        """(index, JPEG) for first ≤ index ≤ last, read one at a time (nothing held)."""
        lo, hi = np.searchsorted(self.indices, [first, last + 1])
        with open(self.folder / FRAMES_FILE, "rb") as f:
            for i, offset, length in self._records[lo:hi]:
                f.seek(int(offset))
                yield int(i), f.read(int(length))


class ClipStore:
    """The recorded sessions of one view under ``root/<view>/session-<id>/``."""

    def __init__(self, root: Path, view: str):
        self.folder = Path(root) / view
        self.view = view

    def session_folder(self, session_id: int) -> Path:
        return self.folder / f"session-{session_id}"

    def writer(self, meta: ClipMeta) -> ClipWriter:
        return ClipWriter(self.session_folder(meta.session_id), meta)

    def reader(self, session_id: int) -> ClipReader | None:
        folder = self.session_folder(session_id)
        try:
            return ClipReader(folder)
        except (OSError, ValueError, TypeError):  # not there, or a torn meta file: nothing to serve
            return None

    def stored(self) -> list[StoredClip]:
        out = []
        if not self.folder.is_dir():
            return out
        for d in self.folder.iterdir():
            m = FOLDER.match(d.name)
            if not m or not d.is_dir():
                continue
            try:
                files = [f.stat() for f in d.iterdir() if f.is_file()]
                newest = max((s.st_mtime for s in files), default=d.stat().st_mtime)
            except FileNotFoundError:  # erased (or pruned) while we looked: it is not stored
                continue
            out.append(StoredClip(int(m.group(1)), sum(s.st_size for s in files), newest))
        return sorted(out, key=lambda c: c.session_id, reverse=True)

    def delete(self, session_id: int) -> bool:
        """Remove the session's video; True if there was some."""
        folder = self.session_folder(session_id)
        if not folder.is_dir():
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def erase(self, session_ids: Iterable[int]) -> list[int]:
        """Delete the video of erased sessions (their patient was erased); the ids it held."""
        return [sid for sid in session_ids if self.delete(sid)]
