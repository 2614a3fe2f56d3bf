"""The MQTT backbone against a real Mosquitto: presence, reconnects, payload rejection."""
from __future__ import annotations

import queue
import subprocess
import sys
import time

import numpy as np
import pytest

from rig.bus import topics
from rig.bus.client import BusClient
from rig.bus.payloads import (KeypointFrame, PayloadError, Presence, TreadmillCommand, decode,
                              decode_keypoints, encode_keypoints)


def collect(client: BusClient, topic_filter: str) -> "queue.Queue":
    q: queue.Queue = queue.Queue()
    client.subscribe(topic_filter, q.put)
    return q


def test_keypoint_payload_round_trip_within_an_eighth_pixel_and_small():
    lm = np.random.default_rng(1).uniform(-100, 1500, (33, 4))
    lm[:, 3] = np.linspace(0, 1, 33)
    data = encode_keypoints(KeypointFrame(7, 1234, 1700000000.25, lm, simulated=True))
    assert len(data) <= 400
    back = decode_keypoints(data)
    assert (back.session_id, back.index, back.t, back.simulated) == (7, 1234, 1700000000.25, True)
    assert np.abs(back.lm[:, :3] - lm[:, :3]).max() <= 1 / 16
    assert np.abs(back.lm[:, 3] - lm[:, 3]).max() <= 1 / 510


def test_keypoint_payload_without_person_and_malformed():
    data = encode_keypoints(KeypointFrame(1, 2, 3.0, None))
    assert decode_keypoints(data).lm is None
    with pytest.raises(PayloadError, match="shorter than the header"):
        decode_keypoints(b"\x01\x02")
    with pytest.raises(PayloadError, match="body is 5 bytes"):
        decode_keypoints(data + b"12345")
    with pytest.raises(PayloadError, match="version 9"):
        decode_keypoints(b"\x09" + data[1:])


def test_json_payload_rejections_name_the_field():
    with pytest.raises(PayloadError, match=r"TreadmillCommand: rate_hz: Input should be greater than 0"):
        decode(TreadmillCommand, b'{"v":1,"id":"x","cmd":"arm","rate_hz":-5}')
    with pytest.raises(PayloadError, match="TreadmillCommand: v"):
        decode(TreadmillCommand, b'{"v":2,"id":"x","cmd":"arm"}')
    with pytest.raises(PayloadError, match="TreadmillCommand"):
        decode(TreadmillCommand, b"\xff garbage")


def test_topic_filters_and_fields():
    assert topics.NODE_KEYPOINTS.path("r1", view="left") == "gaitrig/r1/node/left/kp"
    assert topics.NODE_KEYPOINTS.filter("r1") == "gaitrig/r1/node/+/kp"
    assert topics.NODE_KEYPOINTS.fields("r1", "gaitrig/r1/node/rear/kp") == {"view": "rear"}


def test_malformed_payloads_are_counted_per_kind_and_the_client_keeps_working(broker):
    rx = BusClient(broker.settings(), "rx").start()
    tx = BusClient(broker.settings(), "tx").start()
    good: list = []
    rx.on(topics.TREADMILL_CMD, lambda m: good.append(decode(TreadmillCommand, m.payload)))
    time.sleep(0.3)
    for payload in [b"nonsense", b'{"v":1}', b'{"v":1,"id":"a","cmd":"arm","rate_hz":60}', b"[]"]:
        tx.send(topics.TREADMILL_CMD, payload).wait_for_publish(2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(rx.rejected.values()) < 3:
        time.sleep(0.05)
    assert rx.rejected == {"TreadmillCommand": 3}
    assert [c.rate_hz for c in good] == [60]
    rx.close(), tx.close()


def test_presence_birth_then_death_as_last_will_on_kill(broker):
    watcher = BusClient(broker.settings(), "watcher").start()
    seen = collect(watcher, topics.PRESENCE.path("test", daemon="victim"))
    code = ("import time,sys; from rig.bus.client import BusClient; from rig.config import MqttSettings;"
            f"c=BusClient(MqttSettings(host='127.0.0.1',port={broker.port},rig_id='test',keepalive_s=2),'victim').start();"
            "print('up',flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"up"
    birth = decode(Presence, seen.get(timeout=5).payload)
    assert birth.online and birth.daemon == "victim"
    proc.kill()
    proc.wait()
    death = decode(Presence, seen.get(timeout=10).payload)
    assert not death.online and death.seq == birth.seq
    watcher.close()


def test_subscriptions_survive_a_broker_restart(broker):
    rx = BusClient(broker.settings(), "rx").start()
    got = collect(rx, "gaitrig/test/probe")
    broker.stop()
    time.sleep(1.0)
    broker.start()
    assert rx.wait_connected(15) or pytest.fail("did not reconnect")
    tx = BusClient(broker.settings(), "tx").start()
    time.sleep(0.3)
    tx.publish("gaitrig/test/probe", b"after").wait_for_publish(2)
    assert got.get(timeout=5).payload == b"after"
    assert rx.reconnects == 1
    rx.close(), tx.close()


def test_a_persistent_session_gets_again_what_it_had_not_acknowledged_and_what_came_meanwhile(broker):
    """The coordinator's durable subscription: a message kept but not yet acknowledged (not
    yet committed) when the daemon stops is delivered again; one acknowledged is not; one
    published while it was away waits for it in the broker."""
    settings, topic = broker.settings(), "gaitrig/test/node/left/kp"

    def durable() -> tuple[BusClient, queue.Queue]:
        got: queue.Queue = queue.Queue()
        client = BusClient(settings, "durable", persistent_session=True)
        client.subscribe(topic, lambda m: got.put((m.payload, client.receipt(m))), keep=True)
        assert client.start().wait_connected(5)
        return client, got

    sender = BusClient(settings, "sender").start()
    first, got = durable()
    for payload in (b"one", b"two"):
        sender.publish(topic, payload).wait_for_publish(5)
    (p1, r1), (p2, _) = got.get(timeout=5), got.get(timeout=5)
    assert (p1, p2) == (b"one", b"two")
    first.ack(r1)  # "one" is on disk; "two" is not yet
    time.sleep(0.3)
    first.close()
    sender.publish(topic, b"three").wait_for_publish(5)
    again, got = durable()
    try:
        received = [got.get(timeout=5)[0] for _ in range(2)]
        assert received == [b"two", b"three"]
        with pytest.raises(queue.Empty):
            got.get(timeout=1.0)
    finally:
        again.close()
        sender.close()
