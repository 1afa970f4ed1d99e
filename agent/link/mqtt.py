"""The MQTT adapter: the only module that imports paho-mqtt.

One network thread owns the client. It connects (exponential back-off with
jitter) with a session the broker keeps for ``session_expiry_s`` (MQTT 5) or
a persistent ``clean_session=False`` session (3.1.1), so commands sent while
the device was away are delivered when it comes back (duplicates are answered
from the command log). On every successful connect it resubscribes to the
device's ``cmd`` and ``stored`` topics, republishes the retained ``hello``
and ``state`` and replays every unconfirmed outbox row from the oldest. Rows
are handed to paho in order with a bounded window; the PUBACK marks a row
published and the controller's ``stored`` notice deletes it (end to end: the
broker may die with the controller and lose what it acknowledged). While
connected, rows acknowledged by the broker more than ``confirm_timeout_s``
ago are published again once the controller has confirmed a later seq (they
were lost on the way); a controller that never confirms costs nothing but
the outbox's bounded window. paho's own in-memory retransmission is dropped
at connect so the outbox stays the single source of truth (and the replay
order is the insertion order).

``mqtt_protocol: auto`` tries MQTT 5; when the broker answers "unsupported
protocol version", or sends no CONNACK within ``CONNACK_TIMEOUT_S`` (the
embedded amqtt broker does that to a v5 CONNECT with a will), it reconnects
at once with 3.1.1 and keeps it once it works. A 3.1.1 attempt that gets no
CONNACK either goes back to 5 after the usual back-off.

Callbacks never raise: bad commands are logged, counted and dropped.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import AgentSettings
from agent.link.outbox import Outbox, OutboxFull
from agent.link.session import Backoff, ProtocolChoice
from shared.doctor import LoginOutcome, connack_outcome
from shared.messages import Envelope, MessageRejected, StoredBody, parse_message
from shared.topics import TopicKind, Topics

logger = logging.getLogger(__name__)
WINDOW = 64
"""Outbox rows handed to paho and not yet acknowledged, at most."""
LOOP_TIMEOUT_S = 0.05
CONNACK_TIMEOUT_S = 3.0
"""A broker that accepted TCP but sent no CONNACK by then is treated as not speaking it."""
MAINTAIN_EVERY_S = 1.0
"""How often the unconfirmed rows are checked against their bound and timeout."""


class MqttLink:
    """Keeps one device connected, its retained topics fresh and its outbox draining."""

    def __init__(
        self,
        settings: AgentSettings,
        outbox: Outbox,
        *,
        on_command: Callable[[Envelope[Any]], None],
        will_payload: Callable[[], bytes],
        on_rejected: Callable[[bytes, str], None] | None = None,
        on_chat_request: Callable[[bytes], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_chat_request = on_chat_request
        """Given each payload on this device's chat-request topic (the gateway's over MQTT)."""
        self.outbox = outbox
        self.topics = Topics(settings.topic_prefix)
        self._on_command = on_command
        self._on_rejected = on_rejected
        self._will_payload = will_payload
        self._retained: dict[TopicKind, bytes] = {}
        self._retained_dirty: set[TopicKind] = set()
        self._lock = threading.Lock()
        self._inflight: dict[int, int] = {}
        self._next_maintenance = 0.0
        self.confirmed_up_to: int | None = None
        """The highest seq the controller confirmed to this process (None: none yet)."""
        self.confirmed = 0
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._final_state: bytes | None = None
        self._will: bytes | None = None
        self._flush_s = 2.0
        self._thread: threading.Thread | None = None
        self.backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
        self.rejected_commands = 0
        self.broker_refusals = 0
        self.unanswered_connects = 0
        self.protocol_choice = ProtocolChoice(settings.mqtt_protocol)
        self._connack_seen = False
        self.client = self._make_client()

    # --- public ------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True between a successful CONNACK and the next disconnect."""
        return self._connected.is_set()

    def set_retained(self, kind: TopicKind, payload: bytes) -> None:
        """Publish ``payload`` retained now if connected, and again on every reconnect."""
        with self._lock:
            self._retained[kind] = payload
            self._retained_dirty.add(kind)

    def start(self) -> None:
        """Start the network thread; it connects in the background."""
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    def stop(self, final_state: bytes | None = None, *, flush_s: float = 2.0) -> None:
        """Publish ``final_state`` (retained), drain the outbox for ``flush_s``, disconnect."""
        self._final_state = final_state
        self._flush_s = flush_s
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=flush_s + 10)

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (for start-up and tests)."""
        return self._connected.wait(timeout)

    @property
    def protocol(self) -> str:
        """The MQTT version in use (or being tried): "5" or "3.1.1"."""
        return self.protocol_choice.current

    # --- client set-up -----------------------------------------------------

    def _make_client(self) -> paho.Client:
        v5 = self.protocol == "5"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.settings.device_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else self.settings.session_expiry_s == 0,
        )
        _apply_login(client, self.settings)
        client.max_queued_messages_set(0)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_publish
        client.on_message = self._handle_message
        return client

    # --- network thread ------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._connect_once():
                self._serve_connection()
            if self._stopping.is_set():
                break
            if self.protocol_choice.take_switch():
                self.client = self._make_client()
                if self.protocol == "3.1.1":
                    continue  # the broker answered; try the other version at once
            delay = self.backoff.next_delay()
            logger.info("broker unreachable; retrying in %.1fs", delay)
            self._stopping.wait(delay)
        self._shutdown()

    def _connect_once(self) -> bool:
        state_topic = self.topics.device(self.settings.device_id, TopicKind.STATE)
        try:
            self._will = self._will_payload()
        except OutboxFull as exc:  # keep the last will; connecting matters more
            logger.error("will not renewed: %s", exc)
        if self._will is not None:
            self.client.will_set(state_topic, self._will, qos=1, retain=True)
        extra: dict[str, Any] = {}
        if self.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.settings.session_expiry_s
            extra = {"clean_start": self.settings.session_expiry_s == 0, "properties": properties}
        self._connack_seen = False
        try:
            self.client.connect(
                self.settings.broker_host,
                self.settings.broker_port,
                keepalive=self.settings.keepalive_s,
                **extra,
            )
        except (OSError, ssl.SSLError) as exc:
            logger.debug("connect to %s failed: %s", self.settings.broker_url, exc)
            return False
        return True

    def _serve_connection(self) -> None:
        connack_deadline = time.monotonic() + CONNACK_TIMEOUT_S
        while not self._stopping.is_set():
            rc = self.client.loop(timeout=LOOP_TIMEOUT_S)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._connected.clear()
                return
            if self.connected:
                self._pump()
            elif not self._connack_seen and time.monotonic() > connack_deadline:
                self._give_up_on_connack()
                return

    def _give_up_on_connack(self) -> None:
        """Close a connection the broker never answered; under ``auto``, try the other version."""
        self.unanswered_connects += 1
        logger.warning(
            "no CONNACK from %s within %.0fs (MQTT %s)",
            self.settings.broker_url,
            CONNACK_TIMEOUT_S,
            self.protocol,
        )
        self.protocol_choice.unanswered()
        try:
            self.client.disconnect()
            self.client.loop(timeout=LOOP_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the socket may already be gone
            logger.debug("closing an unanswered connection failed", exc_info=True)

    def _pump(self) -> None:
        """Publish dirty retained topics and hand the next outbox rows to paho."""
        with self._lock:
            dirty = [(kind, self._retained[kind]) for kind in self._retained_dirty]
            self._retained_dirty.clear()
        for kind, payload in dirty:
            topic = self.topics.device(self.settings.device_id, kind)
            self.client.publish(topic, payload, qos=1, retain=True)
        self._maintain()
        room = WINDOW - len(self._inflight)
        if room <= 0:
            return
        for row in self.outbox.pending(skip=set(self._inflight.values()), limit=room):
            info = self.client.publish(row.topic, row.payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
            self._inflight[info.mid] = row.id

    def _maintain(self) -> None:
        """Now and then: bound the unconfirmed rows and republish the ones overtaken."""
        now = time.monotonic()
        if now < self._next_maintenance:
            return
        self._next_maintenance = now + MAINTAIN_EVERY_S
        self.outbox.save_published_marks()
        self.outbox.enforce_unconfirmed_bound()
        if self.confirmed_up_to is not None:
            again = self.outbox.republish_stale(
                published_before=time.time() - self.settings.confirm_timeout_s,
                below_seq=self.confirmed_up_to,
            )
            if again:
                logger.warning("%d message(s) not confirmed by the controller; resending", again)

    def _shutdown(self) -> None:
        if self.connected and self._final_state is not None:
            topic = self.topics.device(self.settings.device_id, TopicKind.STATE)
            info = self.client.publish(topic, self._final_state, qos=1, retain=True)
            deadline = time.monotonic() + self._flush_s
            while time.monotonic() < deadline and self.connected:
                self._pump()
                if self.client.loop(timeout=LOOP_TIMEOUT_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                if info.is_published() and not self._inflight and self._settled():
                    break
        try:
            self.client.disconnect()
            self.client.loop(timeout=LOOP_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - best effort on the way out
            logger.debug("disconnect failed", exc_info=True)
        self._connected.clear()

    def _settled(self) -> bool:
        """Nothing waits for the controller (or it never confirmed anything to this process)."""
        return self.confirmed_up_to is None or self.outbox.unconfirmed() == 0

    # --- callbacks (never raise) -------------------------------------------

    def _handle_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            self._connack_seen = True
            if reason_code.is_failure:
                if self.protocol_choice.refused(reason_code.value):
                    logger.info("%s does not speak MQTT 5", self.settings.broker_url)
                    return
                self.broker_refusals += 1
                logger.error("broker refused the connection: %s", reason_code)
                return
            self.protocol_choice.connected()
            client.drop_out_messages()
            self._inflight.clear()
            self.outbox.republish_all()  # the broker may have lost what it acknowledged
            with self._lock:
                self._retained_dirty = set(self._retained)
            cmd = self.topics.device(self.settings.device_id, TopicKind.CMD)
            stored = self.topics.device(self.settings.device_id, TopicKind.STORED)
            chat = self.topics.device(self.settings.device_id, TopicKind.CHAT_REQUEST)
            client.subscribe([(cmd, 1), (stored, 0), (chat, 1)])
            self.backoff.reset()
            self._connected.set()
            logger.info(
                "connected to %s as %s (MQTT %s)",
                self.settings.broker_url,
                self.settings.device_id,
                self.protocol,
            )
        except Exception:  # noqa: BLE001 - never raise in a paho callback
            logger.exception("error in on_connect")

    def _handle_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._connected.is_set() and not self._stopping.is_set():
            logger.warning("disconnected from broker: %s", reason_code)
        self._connected.clear()

    def _handle_publish(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            row_id = self._inflight.pop(mid, None)
            if row_id is None:
                return
            if reason_code.is_failure:
                # A negative PUBACK (e.g. not authorised) would fail again forever.
                logger.error("broker refused outbox row %d: %s; dropping it", row_id, reason_code)
                self.outbox.delete(row_id)
            else:
                self.outbox.published(row_id)
        except Exception:  # noqa: BLE001 - never raise in a paho callback
            logger.exception("error in on_publish")

    def publish_chat_reply(self, topic: str, correlation: str, payload: bytes) -> None:
        """Publish one chat reply chunk on ``topic`` now, with its correlation data over MQTT 5.

        QoS 1 and not kept in the outbox: the gateway waits seconds, not hours, and fails
        over when a device goes quiet.
        """
        properties = None
        if self.protocol == "5":
            properties = Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = correlation.encode()
        self.client.publish(topic, payload, qos=1, properties=properties)

    def _handle_message(self, client: paho.Client, userdata: object, message: Any) -> None:
        chat = self.topics.device(self.settings.device_id, TopicKind.CHAT_REQUEST)
        if message.topic == chat:
            if self.on_chat_request is not None:
                self._safely(self.on_chat_request, message.payload)
            return
        try:
            envelope = parse_message(message.topic, message.payload, topics=self.topics)
        except MessageRejected as exc:
            self.rejected_commands += 1
            logger.warning("rejected message on %s: %s", message.topic, exc)
            if self._on_rejected is not None:
                self._safely(self._on_rejected, message.payload, str(exc))
            return
        if isinstance(envelope.body, StoredBody):
            self._safely(self._confirm, envelope.body)
        else:
            self._safely(self._on_command, envelope)

    def _confirm(self, body: StoredBody) -> None:
        """The controller stored these seqs: the outbox may forget them."""
        self.confirmed += self.outbox.confirm(body.seqs)
        if body.seqs:
            highest = max(last for _first, last in body.seqs)
            self.confirmed_up_to = max(highest, self.confirmed_up_to or 0)

    @staticmethod
    def _safely(handler: Callable[..., None], *args: Any) -> None:
        try:
            handler(*args)
        except Exception:  # noqa: BLE001 - never raise in a paho callback
            logger.exception("command handler failed")


def try_login(settings: AgentSettings, *, timeout_s: float) -> LoginOutcome:
    """Log in once as this device would (login, TLS), under a throwaway client id: doctor's check.

    A separate client id and a clean session, so a running agent's session is left alone.
    """
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{settings.device_id}-doctor",
        protocol=paho.MQTTv311,
        clean_session=True,
    )
    _apply_login(client, settings)
    answers: list[Any] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
    try:
        client.connect(settings.broker_host, settings.broker_port, keepalive=30)
    except ssl.SSLError as exc:
        return LoginOutcome(kind="tls", detail=str(exc))
    except OSError as exc:
        return LoginOutcome(kind="unreachable", detail=str(exc))
    deadline = time.monotonic() + timeout_s
    while not answers and time.monotonic() < deadline:
        if client.loop(timeout=LOOP_TIMEOUT_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
            break
    client.disconnect()
    return connack_outcome(answers[0] if answers else None, timeout_s)


def _apply_login(client: paho.Client, settings: AgentSettings) -> None:
    """The device's broker login and TLS settings, on a client before it connects."""
    if settings.mqtt_username:
        password = settings.mqtt_password
        client.username_pw_set(
            settings.mqtt_username, password.get_secret_value() if password else None
        )
    if settings.broker_tls:
        client.tls_set(
            ca_certs=str(settings.tls_ca_file) if settings.tls_ca_file else None,
            certfile=str(settings.tls_cert_file) if settings.tls_cert_file else None,
            keyfile=str(settings.tls_key_file) if settings.tls_key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
