"""One MQTT client per daemon, on paho-mqtt 2.x (MQTT v5).

What it adds to paho: presence (retained birth on every connect, death as last will,
Sparkplug-style sequence number), subscriptions that survive reconnects, typed publish
from the topic table, and rejection of malformed payloads — counted per kind and logged
once per kind, never raised into paho's network thread.

A persistent session (the coordinator's) is a durable subscriber: the broker keeps its
subscriptions and queues QoS 1 messages while it is away, and a message it takes with
``keep=True`` is acknowledged only when the daemon calls ``ack`` — once the message is on
disk — so a crash in between makes the broker deliver it again instead of losing it.

A daemon that owns retained state (the bridge: belt, trigger train, link) asks for
``republish_retained``: the last payload it sent on each retained topic is sent again on
every reconnect, so a broker that crashed and lost (or restored an older copy of) its
retained messages holds the current state again at once, not at the next change.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from rig import __version__
from rig.bus import topics
from rig.bus.payloads import Payload, PayloadError, Presence, clip
from rig.config import MqttSettings

log = logging.getLogger(__name__)
Handler = Callable[[mqtt.MQTTMessage], None]
SESSION_EXPIRY_S = 3600
# Unacknowledged messages the broker may have in flight to a persistent session: the rest
# waits in the broker's queue (max_queued_messages), not in the daemon's memory.
RECEIVE_MAXIMUM = 1000


@dataclass(frozen=True)
class Receipt:
    """What acknowledging one delivered message needs, valid on the connection that delivered it."""
    mid: int
    qos: int
    connection: int


class BusClient:
    """A connected daemon. ``daemon`` names it in presence and in its client id."""

    def __init__(self, settings: MqttSettings, daemon: str, *, simulated: bool = False,
                 persistent_session: bool = False, republish_retained: bool = False):
        self.settings = settings
        self.persistent_session = persistent_session
        self.republish_retained = republish_retained
        self._retained: dict[str, tuple[bytes, int]] = {}  # topic -> (payload, qos) last sent retained
        self._retained_lock = threading.Lock()  # publishers' threads and paho's (on reconnect)
        self.republished = 0  # retained messages sent again after reconnects
        self.rig_id = settings.rig_id
        self.daemon = daemon
        self.rejected: Counter[str] = Counter()
        self._rejected_lock = threading.Lock()  # paho's thread and a daemon's worker both count
        self.reconnects = 0
        self._subs: list[tuple[str, int]] = []
        self._connected = threading.Event()
        self._ever_connected = False
        self._closing = False
        self._sub_mid: int | None = None
        self._connection = 0  # connections made so far: a receipt is only acked on its own
        self._ack_lock = threading.Lock()
        self._birth = Presence(daemon=daemon, online=True, seq=time.time_ns() // 1_000_000,
                               t=time.time(), version=__version__, host=socket.gethostname(),
                               simulated=simulated)
        self._client = self._make_client()

    # -- setup ----------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{self.rig_id}-{self.daemon}",
                             protocol=mqtt.MQTTv5, manual_ack=self.persistent_session)
        if s.username:
            client.username_pw_set(s.username, s.password())
        if s.tls_ca_file:
            client.tls_set(ca_certs=str(s.tls_ca_file))
        death = self._birth.model_copy(update={"online": False})
        client.will_set(self.presence_topic, death.encode(), qos=1, retain=True)
        client.max_queued_messages_set(s.max_queued_messages)
        client.reconnect_delay_set(min_delay=1, max_delay=8)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = lambda c, u, msg: self._ack_now(msg)  # matched by no handler: not ours to keep
        return client

    @property
    def presence_topic(self) -> str:
        return topics.PRESENCE.path(self.rig_id, daemon=self.daemon)

    def start(self, wait_s: float | None = 10.0) -> "BusClient":
        """Connect in the background; paho reconnects by itself after that."""
        props = None
        if self.persistent_session:  # the broker queues our QoS 1 messages while we are away
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = RECEIVE_MAXIMUM
        self._client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s,
                                   clean_start=not self.persistent_session, properties=props)
        self._client.loop_start()
        if wait_s is not None and not self._connected.wait(wait_s):
            log.warning("MQTT broker %s:%d not reachable yet; retrying in the background",
                        self.settings.host, self.settings.port)
        return self

    def close(self) -> None:
        """Clean stop: publish our death ourselves (a clean disconnect suppresses the will).
        A persistent session survives this on purpose: what arrives meanwhile waits for us."""
        self._closing = True
        if self._connected.is_set():
            death = self._birth.model_copy(update={"online": False, "t": time.time()})
            self._client.publish(self.presence_topic, death.encode(), qos=1, retain=True).wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    # -- callbacks ------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT connection refused: %s", reason_code)
            return
        with self._ack_lock:
            self._connection += 1
        if self._ever_connected:
            self.reconnects += 1
            log.info("MQTT reconnected (%d)", self.reconnects)
        self._ever_connected = True
        if self._subs:  # birth and "connected" wait for the SUBACK: online means listening
            self._sub_mid = client.subscribe(list(self._subs))[1]
        else:
            self._announce(client)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            log.error("MQTT subscription refused: %s", ", ".join(refused))
        if mid == self._sub_mid:
            self._announce(client)

    def _announce(self, client) -> None:
        client.publish(self.presence_topic, self._birth.model_copy(update={"t": time.time()}).encode(),
                       qos=1, retain=True)
        if self.reconnects:
            self._republish(client)
        self._connected.set()

    def _republish(self, client) -> None:
        """After a reconnect: our retained state again, in case the broker lost it."""
        with self._retained_lock:  # held: a newer state sent meanwhile goes out after these
            retained = list(self._retained.items())
            for topic, (data, qos) in retained:
                client.publish(topic, data, qos=qos, retain=True)
        self.republished += len(retained)
        if retained:
            log.info("reconnected: republished %d retained messages", len(retained))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected.is_set() and not self._closing:
            log.warning("MQTT disconnected: %s", reason_code)
        self._connected.clear()

    # -- use ------------------------------------------------------------------------------
    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1, *, keep: bool = False) -> None:
        """Route messages matching ``topic_filter`` to ``handler``; PayloadError is counted.
        ``keep`` (persistent sessions): the handler takes ``receipt(msg)`` and acks it later."""
        self._client.message_callback_add(topic_filter, self._guard(handler, keep and self.persistent_session))
        self._subs.append((topic_filter, qos))
        if self._connected.is_set():
            self._client.subscribe(topic_filter, qos)

    def _guard(self, handler: Handler, keep: bool) -> Callable:
        def on_message(client, userdata, msg: mqtt.MQTTMessage) -> None:
            kept = False
            try:
                handler(msg)
                kept = keep
            except PayloadError as e:
                self.count_rejection(e, msg.topic)
            except Exception:  # a handler bug must not kill paho's network thread
                log.exception("handler for %s failed", msg.topic)
            finally:
                if not kept:  # rejected or not kept: delivering it again would change nothing
                    self._ack_now(msg)
        return on_message

    def receipt(self, msg: mqtt.MQTTMessage) -> Receipt:
        """Call in the handler, on paho's thread: the delivery to acknowledge later."""
        return Receipt(msg.mid, msg.qos, self._connection)

    def ack(self, receipt: Receipt) -> None:
        """Acknowledge a kept message; one delivered on an earlier connection is skipped, as the
        broker delivers it again (and the daemon stores it idempotently)."""
        with self._ack_lock:
            if self.persistent_session and receipt.qos and receipt.connection == self._connection:
                self._client.ack(receipt.mid, receipt.qos)

    def _ack_now(self, msg: mqtt.MQTTMessage) -> None:
        if self.persistent_session and msg.qos:
            self.ack(self.receipt(msg))

    def count_rejection(self, e: PayloadError, topic: str) -> None:
        """Count by kind; log the first of each kind (clipped: topic and message come from outside)."""
        with self._rejected_lock:
            self.rejected[e.kind] += 1
            first = self.rejected[e.kind] == 1
        log.log(logging.WARNING if first else logging.DEBUG, "rejected payload on %s: %s%s", clip(topic),
                clip(str(e), 300), " (first of its kind; further ones are counted)" if first else "")

    def rejections(self) -> Counter[str]:
        """A copy of the rejection counts (paho's thread may be adding to them)."""
        with self._rejected_lock:
            return Counter(self.rejected)

    def publish(self, topic: str, payload: bytes | Payload, *, qos: int = 1, retain: bool = False,
                properties: Properties | None = None) -> mqtt.MQTTMessageInfo:
        data = payload.encode() if isinstance(payload, Payload) else payload
        if retain and self.republish_retained:
            with self._retained_lock:  # paho sends in call order, so this is the broker's latest
                self._retained[topic] = (data, qos)
                return self._client.publish(topic, data, qos=qos, retain=retain, properties=properties)
        return self._client.publish(topic, data, qos=qos, retain=retain, properties=properties)

    def send(self, topic: topics.Topic, payload: bytes | Payload, **fields: object) -> mqtt.MQTTMessageInfo:
        """Publish on a topic of the table, with its QoS and retain flag."""
        return self.publish(topic.path(self.rig_id, **fields), payload, qos=topic.qos, retain=topic.retained)

    def on(self, topic: topics.Topic, handler: Handler, *, keep: bool = False) -> None:
        self.subscribe(topic.filter(self.rig_id), handler, topic.qos, keep=keep)


def response_properties(response_topic: str, correlation: bytes) -> Properties:
    """MQTT v5 request properties asking for a correlated reply."""
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = response_topic
    props.CorrelationData = correlation
    return props
