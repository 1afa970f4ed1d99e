"""The MQTT link's protocol choice: auto falls back to 3.1.1 only for version refusals."""

from __future__ import annotations

from agent.link.session import UNSUPPORTED_PROTOCOL, ProtocolChoice

NOT_AUTHORIZED = 135


def test_auto_starts_with_5_and_switches_on_unsupported_version() -> None:
    choice = ProtocolChoice("auto")
    assert choice.current == "5"
    assert choice.refused(UNSUPPORTED_PROTOCOL)
    assert choice.take_switch()
    assert choice.current == "3.1.1"
    assert not choice.take_switch()  # one switch per refusal


def test_a_bad_password_is_a_real_refusal_not_a_version_switch() -> None:
    choice = ProtocolChoice("auto")
    assert not choice.refused(NOT_AUTHORIZED)
    assert not choice.take_switch()
    assert choice.current == "5"


def test_forced_versions_never_switch() -> None:
    for setting in ("5", "3.1.1"):
        choice = ProtocolChoice(setting)
        assert not choice.refused(UNSUPPORTED_PROTOCOL)
        choice.unanswered()
        assert not choice.take_switch()
        assert choice.current == setting


def test_unanswered_connects_alternate_until_one_version_connects() -> None:
    choice = ProtocolChoice("auto")
    choice.unanswered()
    assert choice.take_switch() and choice.current == "3.1.1"
    choice.unanswered()
    assert choice.take_switch() and choice.current == "5"
    choice.connected()
    choice.unanswered()  # e.g. a broker restart later: keep the version that worked
    assert not choice.take_switch()
    assert choice.current == "5"
