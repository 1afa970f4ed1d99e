"""The MQTT topic grammar of DESIGN.md, built and parsed here and nowhere else.

Topics look like ``{prefix}/devices/{device_id}/{kind}``. The prefix is
configurable (default ``edgefleet/v1``) so several fleets can share a broker. One kind has
a level more: ``{prefix}/devices/{device_id}/chat-reply/{replica_id}`` is where a device
answers the chat requests of one controller replica, so each replica hears only its own
replies (the plain ``chat-reply`` topic is where a controller that names no replica hears them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

DEFAULT_PREFIX = "edgefleet/v1"
DEVICE_ID_PATTERN = r"[a-z0-9][a-z0-9_-]{0,62}"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_GROUP_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REPLICA_ID_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
"""A controller replica's id as a topic level: no wildcards, no slashes, a bound."""
_REPLICA_ID_RE = re.compile(REPLICA_ID_PATTERN)
ANY_REPLICA = "+"
"""The replica level as a wildcard, for broker ACLs."""


class TopicKind(StrEnum):
    """The last level of a device topic: which message it carries."""

    HELLO = "hello"
    STATE = "state"
    HEARTBEAT = "heartbeat"
    METRICS = "metrics"
    BENCH = "bench"
    CMD = "cmd"
    ACK = "ack"
    STORED = "stored"
    CHAT_REQUEST = "chat-request"
    CHAT_REPLY = "chat-reply"

    @property
    def from_agent(self) -> bool:
        """True for topics an agent publishes; ``cmd``, ``stored``, ``chat-request`` flow in.

        Broker ACLs follow this: a device writes only its own from-agent topics and reads
        only its own others; the controller writes only the others.
        """
        return self not in (TopicKind.CMD, TopicKind.STORED, TopicKind.CHAT_REQUEST)

    @property
    def enveloped(self) -> bool:
        """True for the fleet's messages (envelopes); False for the gateway's chat traffic.

        That traffic is request/response between one gateway and one device, not ingested.
        """
        return self not in (TopicKind.CHAT_REQUEST, TopicKind.CHAT_REPLY)

    @property
    def ingested(self) -> bool:
        """True for the topics ingest subscribes to and stores."""
        return self.from_agent and self.enveloped

    @property
    def retained(self) -> bool:
        """Hello and state are retained so a late subscriber sees the fleet at once."""
        return self in (TopicKind.HELLO, TopicKind.STATE)


class TopicError(ValueError):
    """A topic that does not follow the grammar."""


@dataclass(frozen=True)
class ParsedTopic:
    """A device topic split into its parts."""

    device_id: str
    kind: TopicKind
    replica_id: str | None = None
    """The replica a ``chat-reply`` sub-topic is for; None on every other topic."""


def is_valid_device_id(device_id: str) -> bool:
    """Device ids are lowercase slugs, so they are safe as topic levels and file names."""
    return bool(_DEVICE_ID_RE.fullmatch(device_id))


def is_valid_replica_id(replica_id: str) -> bool:
    """Replica ids are one topic level of letters, digits, ``_ . -``: safe in any filter."""
    return bool(_REPLICA_ID_RE.fullmatch(replica_id))


@dataclass(frozen=True)
class Topics:
    """Builds and parses the topics under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not _PREFIX_RE.match(self.prefix):
            raise TopicError(
                f"invalid topic prefix {self.prefix!r}: use letters, digits, _ . - and /"
            )

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        kinds = "|".join(k.value for k in TopicKind)
        return re.compile(
            rf"{re.escape(self.prefix)}/devices/(?P<device_id>{DEVICE_ID_PATTERN})/(?P<kind>{kinds})"
            rf"(?:/(?P<replica_id>{REPLICA_ID_PATTERN}))?"
        )

    def device(self, device_id: str, kind: TopicKind | str) -> str:
        """The topic on which ``device_id`` exchanges messages of ``kind``."""
        if not is_valid_device_id(device_id):
            raise TopicError(f"invalid device id {device_id!r}: expected {DEVICE_ID_PATTERN}")
        return f"{self.prefix}/devices/{device_id}/{TopicKind(kind).value}"

    def parse(self, topic: str) -> ParsedTopic:
        """Split a device topic; raise :class:`TopicError` naming what is wrong."""
        match = self._pattern.fullmatch(topic)
        if match is None or (match["replica_id"] and match["kind"] != TopicKind.CHAT_REPLY):
            raise TopicError(
                f"topic {topic!r} is not {self.prefix}/devices/<device-id>/<kind>"
                " (or .../chat-reply/<replica-id>)"
            )
        return ParsedTopic(match["device_id"], TopicKind(match["kind"]), match["replica_id"])

    def chat_reply(self, device_id: str, replica_id: str | None = None) -> str:
        """Where ``device_id`` answers the chat requests of controller replica ``replica_id``.

        None: the plain ``chat-reply`` topic. :data:`ANY_REPLICA` gives the ACL filter.
        """
        topic = self.device(device_id, TopicKind.CHAT_REPLY)
        if replica_id is None:
            return topic
        return f"{topic}/{_replica_level(replica_id)}"

    def chat_replies(self, replica_id: str) -> str:
        """The filter of every device's chat replies to ``replica_id`` (or :data:`ANY_REPLICA`)."""
        return f"{self.subscription(TopicKind.CHAT_REPLY)}/{_replica_level(replica_id)}"

    def subscription(
        self, kind: TopicKind | str | None = None, *, share_group: str | None = None
    ) -> str:
        """A wildcard filter over all devices, optionally as an MQTT 5 shared subscription."""
        level = "+" if kind is None else TopicKind(kind).value
        topic_filter = f"{self.prefix}/devices/+/{level}"
        if share_group is None:
            return topic_filter
        if not _GROUP_RE.match(share_group):
            raise TopicError(f"invalid shared-subscription group {share_group!r}")
        return f"$share/{share_group}/{topic_filter}"

    def agent_subscriptions(self, *, share_group: str | None = None) -> list[str]:
        """Every filter the controller needs to hear all agent-published topics (ingest's)."""
        return [
            self.subscription(kind, share_group=share_group) for kind in TopicKind if kind.ingested
        ]

    def device_namespace(self, device_id: str) -> str:
        """The filter covering all of one device's topics (for broker ACLs)."""
        if not is_valid_device_id(device_id):
            raise TopicError(f"invalid device id {device_id!r}")
        return f"{self.prefix}/devices/{device_id}/#"


def _replica_level(replica_id: str) -> str:
    if replica_id != ANY_REPLICA and not is_valid_replica_id(replica_id):
        raise TopicError(
            f"invalid replica id {replica_id!r}: 1 to 64 letters, digits, _ . - (no / + #)"
        )
    return replica_id
