import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.topics import (
    ANY_REPLICA,
    DEVICE_ID_PATTERN,
    REPLICA_ID_PATTERN,
    ParsedTopic,
    TopicError,
    TopicKind,
    Topics,
)

device_ids = st.from_regex(rf"\A{DEVICE_ID_PATTERN}\Z")
replica_ids = st.from_regex(rf"\A{REPLICA_ID_PATTERN}\Z")
prefixes = st.from_regex(r"\A[A-Za-z0-9_.-]{1,12}(/[A-Za-z0-9_.-]{1,12}){0,2}\Z")


@given(prefix=prefixes, device_id=device_ids, kind=st.sampled_from(list(TopicKind)))
def test_topic_round_trips(prefix: str, device_id: str, kind: TopicKind) -> None:
    topics = Topics(prefix)
    parsed = topics.parse(topics.device(device_id, kind))
    assert (parsed.device_id, parsed.kind) == (device_id, kind)


@given(prefix=prefixes, device_id=device_ids, replica_id=replica_ids)
def test_a_replicas_chat_reply_topic_round_trips(
    prefix: str, device_id: str, replica_id: str
) -> None:
    topics = Topics(prefix)
    parsed = topics.parse(topics.chat_reply(device_id, replica_id))
    assert parsed == ParsedTopic(device_id, TopicKind.CHAT_REPLY, replica_id)
    plain = topics.parse(topics.chat_reply(device_id))
    assert plain == ParsedTopic(device_id, TopicKind.CHAT_REPLY)


def test_a_replica_hears_its_own_chat_replies_and_acls_cover_every_replica() -> None:
    topics = Topics("fleet/x")
    assert topics.chat_replies("gw-a") == "fleet/x/devices/+/chat-reply/gw-a"
    assert topics.chat_replies(ANY_REPLICA) == "fleet/x/devices/+/chat-reply/+"
    assert topics.chat_reply("pi-1", ANY_REPLICA) == "fleet/x/devices/pi-1/chat-reply/+"
    assert topics.chat_reply("pi-1") == topics.device("pi-1", TopicKind.CHAT_REPLY)


@pytest.mark.parametrize("bad", ["", "a/b", "a+b", "#", "gw\n", "$share", "r" * 65])
def test_replica_ids_that_would_break_topic_levels_are_refused(bad: str) -> None:
    with pytest.raises(TopicError, match="invalid replica id"):
        Topics().chat_reply("pi-1", bad)
    with pytest.raises(TopicError, match="invalid replica id"):
        Topics().chat_replies(bad)


@pytest.mark.parametrize(
    "topic",
    [
        "edgefleet/v1/devices/pi-1/unknown",
        "edgefleet/v1/devices/PI-1/hello",
        "edgefleet/v1/devices/pi-1/hello/extra",
        "other/v1/devices/pi-1/hello",
        "edgefleet/v1/devices/+/hello",
        "edgefleet/v1/devices//hello",
        "edgefleet/v1/devices/pi-1/hello\n",
        "edgefleet/v1/devices/pi-1/cmd/replica-1",
        "edgefleet/v1/devices/pi-1/chat-request/replica-1",
        "edgefleet/v1/devices/pi-1/chat-reply/",
        "edgefleet/v1/devices/pi-1/chat-reply/a/b",
        "edgefleet/v1/devices/pi-1/chat-reply/+",
        "edgefleet/v1/devices/pi-1/chat-reply/#",
        "edgefleet/v1/devices/pi-1/chat-reply/r\n",
        "edgefleet/v1/devices/pi-1/chat-reply/" + "r" * 65,
    ],
)
def test_parse_rejects_topics_outside_the_grammar(topic: str) -> None:
    with pytest.raises(TopicError, match="is not"):
        Topics().parse(topic)


def test_device_rejects_ids_that_would_break_topic_levels() -> None:
    for bad in ["a/b", "a+b", "#", "", "Upper"]:
        with pytest.raises(TopicError, match="invalid device id"):
            Topics().device(bad, TopicKind.HELLO)


def test_subscriptions_cover_agent_topics_and_support_shared_groups() -> None:
    topics = Topics("fleet/x")
    assert topics.subscription(TopicKind.METRICS) == "fleet/x/devices/+/metrics"
    assert topics.subscription(share_group="ingest") == "$share/ingest/fleet/x/devices/+/+"
    assert "fleet/x/devices/+/cmd" not in topics.agent_subscriptions()
    assert len(topics.agent_subscriptions()) == 6
    shared = topics.agent_subscriptions(share_group="ingest")
    assert "$share/ingest/fleet/x/devices/+/bench" in shared and len(shared) == 6
    with pytest.raises(TopicError):
        topics.subscription(share_group="bad/group")


def test_invalid_prefix_is_refused() -> None:
    with pytest.raises(TopicError, match="prefix"):
        Topics("bad/+/prefix")


def test_only_hello_and_state_are_retained() -> None:
    assert {k for k in TopicKind if k.retained} == {TopicKind.HELLO, TopicKind.STATE}
