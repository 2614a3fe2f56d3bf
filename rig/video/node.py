"""The node's video parts, built from its config: the recorder, the clip server and the
address the node announces for it in its birth message."""
from __future__ import annotations

import errno
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Callable

from rig.config import NodeConfig

from .recorder import Picture, VideoRecorder
from .server import ClipServer
from .store import ClipStore

log = logging.getLogger(__name__)


@dataclass
class NodeVideo:
    recorder: VideoRecorder
    server: ClipServer
    url: str  # what the coordinator asks, e.g. http://192.168.1.21:8091

    def start(self, stop: threading.Event) -> threading.Thread:
        self.server.start()
        thread = threading.Thread(target=self.recorder.run, args=(stop,), name="video-recorder", daemon=True)
        thread.start()
        self.recorder.prune()  # at start too: a node that films rarely still forgets on time
        log.info("review video in %s, clips served on %s", self.recorder.store.folder, self.url)
        return thread

    def erase(self, session_ids: list[int], recording: int | None) -> list[int]:
        """Delete the video of sessions erased with their patient; the ids this node held. Never
        the one being filmed (the coordinator lists a session only once it is closed)."""
        deleted = self.recorder.store.erase(sid for sid in session_ids if sid != recording)
        if deleted:
            log.info("review video of %d erased sessions deleted", len(deleted))
        return deleted

    def close(self) -> None:
        self.server.close()


def build_video(config: NodeConfig, picture: Picture | None, source_size: Callable[[], tuple[int, int]]
                ) -> NodeVideo | None:
    v = config.video
    if not v.enabled:
        return None
    store = ClipStore(v.dir or config.spool_dir / "video", config.view)
    recorder = VideoRecorder(store, picture, source_size, v.width_px, v.jpeg_quality, int(v.max_mb * 1e6),
                             v.keep_days)
    token = v.token_file.read_text().strip() if v.token_file else None
    try:
        server = ClipServer(store, v.host, v.port, token)
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        server = ClipServer(store, v.host, 0, token)
        log.warning("clip server: port %d is in use; serving on %d instead (announced in the birth message)",
                    v.port, server.port)
    host = v.advertise_host or advertised_host(v.host, config.mqtt.host, config.mqtt.port)
    return NodeVideo(recorder, server, f"http://{_bracketed(host)}:{server.port}")


def advertised_host(bound: str, broker_host: str, broker_port: int) -> str:
    """The address the coordinator reaches this node at: the one it listens on, or, when it
    listens on all of them, the local address of the route toward the broker (no packet
    is sent: connecting a UDP socket only chooses the route)."""
    if bound not in ("0.0.0.0", "::", ""):
        return bound
    try:
        family = socket.getaddrinfo(broker_host, broker_port, proto=socket.IPPROTO_UDP)[0]
        with socket.socket(family[0], socket.SOCK_DGRAM) as s:
            s.connect(family[4])
            return s.getsockname()[0]
    except OSError:
        return socket.gethostname()


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
