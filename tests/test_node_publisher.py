"""The node's publisher against a real Mosquitto that crashes: frames the broker
acknowledged and then lost with its memory are sent again after the reconnection, even
when the outage filled the bounded spool — only frames that found no room are lost, and
those are counted."""
from __future__ import annotations

import queue
import threading
import time

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import KeypointFrame, decode_keypoints
from rig.node.publisher import KeypointPublisher
from rig.node.spool import Spool
from rig.sim.broker import LocalBroker, free_port

FRAMES = 30


def _listener(broker: LocalBroker) -> tuple[mqtt.Client, queue.Queue]:
    """A subscriber to the left camera's keypoints: the indices it receives."""
    got: queue.Queue = queue.Queue()
    ready = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, u, m: got.put(decode_keypoints(m.payload).index)
    c.on_subscribe = lambda *a: ready.set()
    c.on_connect = lambda cl, *a: cl.subscribe(topics.NODE_KEYPOINTS.path("test", view="left"), qos=1)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    assert ready.wait(10)
    return c, got


def _indices(got: queue.Queue, n: int, timeout_s: float = 20.0) -> list[int]:
    return sorted(got.get(timeout=timeout_s) for _ in range(n))


def test_frames_a_crashed_broker_lost_are_sent_again_though_the_spool_is_full(tmp_path):
    port = free_port()
    broker = LocalBroker(tmp_path, config=f"listener {port} 127.0.0.1\nallow_anonymous true\n", port=port).start()
    bus = BusClient(broker.settings(), "node-left").start()
    publisher = KeypointPublisher(bus, "left", True, Spool(":memory:", max_bytes=1))  # holds nothing
    before, got_before = _listener(broker)
    lm = np.full((33, 4), 100.0)
    assert all(publisher.frame(1, i, 1.0 + i / 60, lm) for i in range(FRAMES))
    assert _indices(got_before, FRAMES) == list(range(FRAMES))  # the broker had every one
    before.loop_stop()

    broker.proc.kill()  # a crash: no persistence, what it held is gone
    broker.proc.wait(5)
    broker.start()
    assert _wait(lambda: bus.connected)
    after, got_after = _listener(broker)
    stop = threading.Event()
    replay = threading.Thread(target=publisher.replay, args=(stop,), daemon=True)
    replay.start()
    try:
        assert _indices(got_after, FRAMES) == list(range(FRAMES))
        assert (publisher.resent, publisher.refused) == (FRAMES, 0)
        assert _wait(lambda: publisher.pending == 0)
        assert publisher.frame(1, FRAMES, 2.0, lm)  # and publishing goes on directly
        assert got_after.get(timeout=10) == FRAMES
    finally:
        stop.set()
        replay.join(5)
        after.loop_stop()
        bus.close()
        broker.stop()


def _wait(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()
