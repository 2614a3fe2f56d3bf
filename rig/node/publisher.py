"""Publishing keypoints: the one path by which every node — real or simulated — sends its
frames and its end-of-session count. While the broker is unreachable, messages go to the
on-disk spool; once it is back they are replayed first, in order, then publishing resumes.

A broker that crashes (rather than stops) loses what it accepted since it last saved its
state (``autosave_interval``), acknowledged or not; so after every reconnection the node
sends again what it published in the last ``resend_window_s`` — the coordinator stores
a frame once, so a copy that had arrived costs nothing. Those copies wait in memory, not in
the bounded spool: a spool filled by the outage must not crowd out the only other copy of a
frame the broker acknowledged and then lost."""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque

import numpy as np
import paho.mqtt.client as mqtt

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import KeypointFrame, NodeEnd, encode_keypoints
from rig.node.spool import Spool, SpoolFull

log = logging.getLogger(__name__)
REPLAY_BATCH = 200


class KeypointPublisher:
    def __init__(self, bus: BusClient, view: str, simulated: bool, spool: Spool, resend_window_s: float = 35.0):
        self.bus, self.view, self.simulated, self.spool = bus, view, simulated, spool
        self.resend_window_s = resend_window_s
        self.refused = 0  # the spool was full: frames lost, and counted
        self.resent = 0  # sent again after a reconnection
        self._order = threading.Lock()  # direct publishing and replay must not interleave
        self._recent: deque[tuple[float, str, int, bytes]] = deque()  # (monotonic s, topic, qos, payload)
        self._resend: deque[tuple[str, int, bytes]] = deque()  # copies to send again, oldest first
        self._reconnects_seen = 0

    def frame(self, session_id: int, index: int, t: float, lm: np.ndarray | None, tracked: bool = False,
              interpolated: np.ndarray | None = None) -> bool:
        payload = encode_keypoints(KeypointFrame(session_id, index, t, lm, self.simulated, tracked, interpolated))
        return self._send(topics.NODE_KEYPOINTS, payload)

    def preview(self, session_id: int, index: int, t: float, lm: np.ndarray | None) -> None:
        """The live view: best effort, never spooled (the next one replaces it)."""
        if self.bus.connected:
            payload = encode_keypoints(KeypointFrame(session_id, index, t, lm, self.simulated))
            self.bus.publish(topics.NODE_PREVIEW.path(self.bus.rig_id, view=self.view), payload,
                             qos=topics.NODE_PREVIEW.qos, retain=True)

    def end(self, end: NodeEnd) -> None:
        self._send(topics.NODE_END, end.encode())
        log.info("session %d: %d frames published, %d captured, %d missed triggers, %d dropped, "
                 "%d waited for inference after the train stopped", end.session_id, end.frames, end.captured,
                 end.missed_triggers, end.dropped, end.backlog_at_train_end)

    def _send(self, topic: topics.Topic, payload: bytes) -> bool:
        path = topic.path(self.bus.rig_id, view=self.view)
        with self._order:
            if self.bus.connected and not self._resend and self.spool.count == 0:
                if self.bus.publish(path, payload, qos=topic.qos).rc == mqtt.MQTT_ERR_SUCCESS:
                    self._remember(path, topic.qos, payload)
                    return True
            try:
                self.spool.put(path, topic.qos, payload)
                return True
            except SpoolFull as e:
                self.refused += 1
                if self.refused == 1:
                    log.error("frames are being lost: %s", e)
                return False

    def _remember(self, topic: str, qos: int, payload: bytes) -> None:
        now = time.monotonic()
        self._recent.append((now, topic, qos, payload))
        while self._recent and self._recent[0][0] < now - self.resend_window_s:
            self._recent.popleft()

    @property
    def pending(self) -> int:
        """Messages waiting to go out: copies sent again after a reconnection, then the spool."""
        return len(self._resend) + self.spool.count

    def _after_reconnect(self) -> None:
        """After a reconnection: what the broker may have lost goes out again, before the spool."""
        if not self.bus.connected or self.bus.reconnects == self._reconnects_seen:
            return
        with self._order:
            self._reconnects_seen = self.bus.reconnects
            self._resend.extend((topic, qos, payload) for _, topic, qos, payload in self._recent)
            n, self._recent = len(self._recent), deque()
            self.resent += n
        if n:
            log.info("reconnected: sending the last %d messages again, in case the broker lost them", n)

    def replay(self, stop: threading.Event, idle_s: float = 0.2) -> None:
        """Send the copies, then drain the spool, whenever the broker is reachable; runs on its own thread."""
        while not stop.wait(idle_s):
            self._after_reconnect()
            while self.bus.connected and (self._resend or self.spool.count) and not stop.is_set():
                self._after_reconnect()
                if not self._replay_batch():
                    break

    def _replay_batch(self) -> bool:
        with self._order:
            from_memory = bool(self._resend)
            rows = [(None, *m) for m in itertools.islice(self._resend, REPLAY_BATCH)] if from_memory \
                else self.spool.peek(REPLAY_BATCH)
            batch, last_id = [row[1:] for row in rows], rows[-1][0]
            infos = [self.bus.publish(topic, payload, qos=qos) for topic, qos, payload in batch]
        for info in infos:
            if not _published(info):
                return False  # connection lost again: keep them, they go out next time
        with self._order:
            for topic, qos, payload in batch:
                self._remember(topic, qos, payload)  # acknowledged, yet a broker crash may still lose it
            if from_memory:
                for _ in batch:
                    self._resend.popleft()
            else:
                self.spool.remove_through(last_id)
        log.info("replayed %d %s messages, %d left", len(batch), "resent" if from_memory else "spooled",
                 self.pending)
        return True


def _published(info: mqtt.MQTTMessageInfo, timeout_s: float = 5.0) -> bool:
    """Acknowledged by the broker in time; paho raises for a publish refused outright
    (not connected, queue full), which must not end the replay thread."""
    try:
        info.wait_for_publish(timeout_s)
    except (RuntimeError, ValueError):
        return False
    return info.is_published()
