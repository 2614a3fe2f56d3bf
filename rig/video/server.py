"""The node's clip server (routes and stream format: :mod:`.protocol`): a small threaded
HTTP server that reads frames from the clip store as they are asked for and writes them
straight to the socket. It keeps nothing in memory beyond one frame per request."""
from __future__ import annotations

import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import protocol
from .store import ClipStore

log = logging.getLogger(__name__)


class ClipServer:
    """Serves ``store`` on (host, port); port 0 picks a free one (see :attr:`port`)."""

    def __init__(self, store: ClipStore, host: str, port: int, token: str | None = None):
        self.store, self.token = store, token
        handler = type("Handler", (_Handler,), {"clips": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="clip-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(5)


def session_id(raw: str) -> int | None:
    """A session id as the nodes accept it (decimal, 1 ≤ id < 2³²), else None."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        return None
    value = int(raw)
    return value if 1 <= value <= protocol.SESSION_ID_MAX else None


class _Handler(BaseHTTPRequestHandler):
    clips: ClipServer
    protocol_version = "HTTP/1.0"  # the end of a stream is the end of the connection
    server_version = "gaitrig-clips"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        log.debug("%s " + format, self.client_address[0], *args)

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        token = self.clips.token
        if token and not hmac.compare_digest(self.headers.get("Authorization", ""), f"Bearer {token}"):
            self._json(401, {"error": "this node's clips need its token"})
            return False
        return True

    def do_DELETE(self) -> None:  # noqa: N802 (http.server's name)
        """Erase one session's video (its patient was erased)."""
        if not self._authorised():
            return
        path = urlsplit(self.path).path.rstrip("/")
        head, _, raw = path.rpartition("/")
        sid = session_id(raw) if head == protocol.API_PREFIX else None
        if sid is None:
            return self._json(404, {"error": f"no such request: {path[:80]}"})
        deleted = self.clips.store.delete(sid)
        log.info("session %d: review video erased (%s)", sid, "deleted" if deleted else "none kept")
        self._json(200, {"session_id": sid, "deleted": deleted})

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if not self._authorised():
            return
        url = urlsplit(self.path)
        parts = url.path.rstrip("/").split("/")
        store = self.clips.store
        if url.path.rstrip("/") == protocol.API_PREFIX:
            clips = [r.summary() for c in store.stored() if (r := store.reader(c.session_id))]
            return self._json(200, {"view": store.view, "clips": clips})
        prefix = protocol.API_PREFIX.split("/")
        if parts[:len(prefix)] != prefix or len(parts) not in (len(prefix) + 1, len(prefix) + 2) \
                or not parts[len(prefix)].isdigit() or len(parts[len(prefix)]) > 19:
            return self._json(404, {"error": f"no such request: {url.path[:80]}"})
        sid = int(parts[len(prefix)])
        reader = store.reader(sid)
        if reader is None:
            return self._json(404, {"error": f"the {store.view} node keeps no video of session {sid} "
                                             "(not recorded, or deleted after its retention time)"})
        if len(parts) == len(prefix) + 1:
            meta = reader.meta
            return self._json(200, {**reader.summary(), "width": meta.width, "height": meta.height,
                                    "source_width": meta.source_width, "source_height": meta.source_height,
                                    "fps": meta.fps, "codec": meta.codec})
        if parts[-1] != "frames":
            return self._json(404, {"error": f"no such request: {url.path[:80]}"})
        query = parse_qs(url.query)
        try:
            first, last = protocol.parse_range(query.get("from", [None])[0], query.get("to", [None])[0])
        except ValueError as e:
            return self._json(400, {"error": str(e)})
        self.send_response(200)
        self.send_header("Content-Type", protocol.CONTENT_TYPE)
        self.end_headers()
        try:
            self.wfile.write(protocol.MAGIC)
            for index, jpeg in reader.frames(first, last):
                self.wfile.write(protocol.encode_frame(index, jpeg))
        except (BrokenPipeError, ConnectionResetError):  # the tablet went away mid-clip
            log.debug("clip of session %d: the reader left", sid)
