"""A bounded on-disk spool for messages that could not be published: paho keeps QoS 1
messages in memory only, so a node that loses the broker (or restarts while it is gone)
would lose frames. Spooled messages are replayed in order once the broker is back.

SQLite (WAL) because a power cut mid-write must not corrupt what is already spooled.
"""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class SpoolFull(Exception):
    pass


class Spool:
    def __init__(self, path: Path | str, max_bytes: int):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
                           "qos INTEGER NOT NULL, payload BLOB NOT NULL)")
        self.count, self.bytes = self._conn.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM spool").fetchone()

    def put(self, topic: str, qos: int, payload: bytes) -> None:
        with self._lock:
            if self.bytes + len(payload) > self.max_bytes:
                raise SpoolFull(f"spool holds {self.bytes} bytes, its limit is {self.max_bytes}")
            self._conn.execute("INSERT INTO spool (topic, qos, payload) VALUES (?, ?, ?)", (topic, qos, payload))
            self.count += 1
            self.bytes += len(payload)

    def peek(self, n: int) -> list[tuple[int, str, int, bytes]]:
        with self._lock:
            return self._conn.execute("SELECT id, topic, qos, payload FROM spool ORDER BY id LIMIT ?", (n,)).fetchall()

    def remove_through(self, last_id: int) -> None:
        with self._lock:
            n, size = self._conn.execute("SELECT count(*), coalesce(sum(length(payload)), 0) FROM spool "
                                         "WHERE id <= ?", (last_id,)).fetchone()
            self._conn.execute("DELETE FROM spool WHERE id <= ?", (last_id,))
            self.count -= n
            self.bytes -= size

    def close(self) -> None:
        self._conn.close()
