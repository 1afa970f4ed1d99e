"""The controller's only paho-mqtt module: a persistent-session client with manual acks.

QoS 1 messages are acknowledged (PUBACK) only when the caller says so, after
they are committed to the database, so a controller killed mid-batch gets
them again from the broker on its next connect (same client id, persistent
session). Callbacks never raise: failures are logged and counted.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from controller.models import utcnow
from shared.doctor import LoginOutcome, connack_outcome
from shared.settings import BrokerAddress

logger = logging.getLogger(__name__)

RECEIVE_MAXIMUM = 65535
"""Unacknowledged QoS 1 messages the broker may have in flight to us (MQTT 5)."""
SESSION_TAKEN_OVER = 142
"""MQTT 5 DISCONNECT reason: another client connected with our client id."""


@dataclass(frozen=True)
class MqttOptions:
    """Where and how to connect."""

    host: str
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = "edgefleet-controller"
    protocol: str = "5"
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30

    @classmethod
    def from_url(cls, url: str, **kwargs: object) -> MqttOptions:
        """Options from ``mqtt://host:port`` (``mqtts://`` for TLS; login in ``kwargs``)."""
        address = BrokerAddress.from_url(url)
        return cls(
            host=address.host,
            port=address.port,
            tls=address.tls,
            **kwargs,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Received:
    """One message handed from the network thread to the writer."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received_at: datetime
    generation: int = 0
    """Which connection delivered it: packet ids are only meaningful on that connection."""


MessageSink = Callable[[Received], None]


class MqttConnection:
    """A paho client that subscribes on every connect and acknowledges on request."""

    def __init__(
        self, options: MqttOptions, *, subscriptions: list[str], sink: MessageSink | None
    ) -> None:
        self.options = options
        self.subscriptions = list(subscriptions)
        self._sink = sink
        self.connected = threading.Event()
        self.callback_errors = 0
        self.generation = 0
        self.takeovers = 0
        self.last_takeover: float | None = None
        """``time.monotonic()`` of the last session takeover the broker told us about."""
        self.connection_losses: deque[float] = deque(maxlen=100)
        """When the broker dropped us (not our own disconnect): a client using our id,
        with a broker that does not say so (Mosquitto 2.0 with MQTT 5), shows as a burst."""
        self.disconnected_since: float | None = time.monotonic()
        self._stopping = False
        v5 = options.protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        self._client.max_queued_messages_set(0)
        self._client.max_inflight_messages_set(1000)
        if options.username:
            self._client.username_pw_set(options.username, options.password)
        if options.tls:
            self._client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    @property
    def is_v5(self) -> bool:
        """Whether this client speaks MQTT 5."""
        return self.options.protocol == "5"

    def start(self) -> None:
        """Connect in the background (paho retries until the broker is there)."""
        properties = None
        if self.is_v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.options.session_expiry_s
            properties.ReceiveMaximum = RECEIVE_MAXIMUM
        self._client.connect_async(
            self.options.host,
            self.options.port,
            keepalive=self.options.keepalive_s,
            clean_start=False if self.is_v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """Block until the broker accepted us (True) or the timeout passed."""
        return self.connected.wait(timeout)

    def stop(self) -> None:
        """Disconnect (the broker keeps the session) and stop the network thread."""
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def ack(self, mid: int, qos: int, generation: int | None = None) -> None:
        """Acknowledge a received QoS 1 message (after it is safely stored).

        A message from an earlier connection is not acknowledged: its packet id
        may now name another message, and the broker redelivers it anyway
        (ingest then counts it as a duplicate).
        """
        if qos > 0 and (generation is None or generation == self.generation):
            self._client.ack(mid, qos)

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        timeout: float = 10.0,
        properties: Properties | None = None,
    ) -> bool:
        """Publish and wait for the broker's acknowledgement; False if it did not come."""
        try:
            info = self._client.publish(
                topic, payload, qos=qos, retain=False, properties=properties
            )
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            logger.warning("publish to %s failed: %s", topic, exc)
            return False
        return info.is_published()

    def notify(self, topic: str, payload: bytes) -> bool:
        """Publish at QoS 0 without waiting (a lost notice is repeated by its sender's retry)."""
        info = self._client.publish(topic, payload, qos=0, retain=False)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        try:
            if getattr(reason, "is_failure", False):
                logger.error("broker refused the connection: %s", reason)
                return
            if self.subscriptions and self.is_v5:
                client.subscribe([(t, SubscribeOptions(qos=1)) for t in self.subscriptions])
            elif self.subscriptions:
                client.subscribe([(t, 1) for t in self.subscriptions])
            self.generation += 1
            self.disconnected_since = None
            self.connected.set()
            logger.info(
                "connected to %s:%s (session present: %s)",
                self.options.host,
                self.options.port,
                getattr(flags, "session_present", None),
            )
        except Exception:
            self.callback_errors += 1
            logger.exception("error in on_connect")

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self.connected.clear()
        self.disconnected_since = time.monotonic()
        if not self._stopping:
            self.connection_losses.append(self.disconnected_since)
        if getattr(reason, "value", None) == SESSION_TAKEN_OVER:
            self.takeovers += 1
            self.last_takeover = self.disconnected_since
            logger.error(
                "another client took over this session (client id %r): ingest is interrupted",
                self.options.client_id,
            )
            return
        logger.info("disconnected from broker: %s", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            if self._sink is None:
                self.ack(message.mid, message.qos)
                return
            self._sink(
                Received(
                    # raw bytes: paho's .topic raises on invalid UTF-8; let it dead-letter
                    topic=message._topic.decode("utf-8", "replace"),
                    payload=bytes(message.payload),
                    mid=message.mid,
                    qos=message.qos,
                    retain=bool(message.retain),
                    received_at=utcnow(),
                    generation=self.generation,
                )
            )
        except Exception:
            self.callback_errors += 1
            logger.exception("error handing off a message from %r", getattr(message, "topic", "?"))


def try_login(options: MqttOptions, *, timeout_s: float) -> LoginOutcome:
    """Log in once with ``options`` under a throwaway client id and a clean session.

    For ``edgefleet doctor``: the controller's persistent session is left alone.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{options.client_id}-doctor",
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    if options.username:
        client.username_pw_set(options.username, options.password)
    if options.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    answers: list[ReasonCode] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
    try:
        client.connect(options.host, options.port, keepalive=options.keepalive_s)
    except ssl.SSLError as exc:
        return LoginOutcome(kind="tls", detail=str(exc))
    except OSError as exc:
        return LoginOutcome(kind="unreachable", detail=str(exc))
    deadline = time.monotonic() + timeout_s
    while not answers and time.monotonic() < deadline:
        if client.loop(timeout=0.2) != mqtt.MQTT_ERR_SUCCESS:
            break
    client.disconnect()
    return connack_outcome(answers[0] if answers else None, timeout_s)
