"""The coordinator's side of the clip protocol: ask a node, get JSON or a frame stream to pass
on. Nothing is stored: the stream is read in chunks as the tablet takes them."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Iterator

from . import protocol

CHUNK_BYTES = 64 * 1024


class NodeOffline(RuntimeError):
    """The node did not answer (off, unreachable, or too slow)."""


class NodeRefused(RuntimeError):
    """The node answered with an error (no such session, a bad range, a wrong token)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ClipClient:
    def __init__(self, base_url: str, view: str, timeout_s: float, token: str | None = None):
        self.base_url, self.view, self.timeout_s, self.token = base_url.rstrip("/"), view, timeout_s, token

    def _open(self, path: str, method: str = "GET"):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        request = urllib.request.Request(self.base_url + path, headers=headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read() or b"{}").get("error") or e.reason
            except (ValueError, AttributeError):
                message = str(e.reason)
            raise NodeRefused(e.code, f"camera node {self.view}: {message}") from None
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise NodeOffline(f"camera node {self.view} is offline: it did not answer at {self.base_url} "
                              f"({reason})") from None

    def clip_info(self, session_id: int) -> dict:
        with self._open(f"{protocol.API_PREFIX}/{session_id}") as response:
            try:
                return json.loads(response.read())
            except ValueError:
                raise NodeRefused(502, f"camera node {self.view} sent something that is not JSON") from None

    def delete(self, session_id: int) -> bool:
        """Erase the session's video on the node; True if it had some."""
        with self._open(f"{protocol.API_PREFIX}/{session_id}", "DELETE") as response:
            try:
                return bool(json.loads(response.read())["deleted"])
            except (ValueError, KeyError, TypeError):
                raise NodeRefused(502, f"camera node {self.view} sent an answer that is not the protocol's") from None

    def frames(self, session_id: int, first: int, last: int) -> Iterator[bytes]:
        """The node's frame stream in chunks; raises before the first chunk if it cannot start."""
        response = self._open(f"{protocol.API_PREFIX}/{session_id}/frames?from={first}&to={last}")

        def chunks() -> Iterator[bytes]:
            try:
                while data := response.read(CHUNK_BYTES):
                    yield data
            except (OSError, socket.timeout):
                return  # the node went away mid-clip: the player sees a short stream
            finally:
                response.close()

        return chunks()
