"""amqtt plugins giving the embedded broker the same logins and ACLs as the Mosquitto files.

Logins: the controller's account, plus every device's active MQTT credential
from the database (verified against the stored ``$7$`` hash). Client ids are
bound to logins, as Mosquitto's ``use_username_as_clientid`` binds them: a
device connects only as itself, and no client but the controller's may use
the controller's id (taking over its session would stop ingest). ACL: a device
publishes only under its own ``devices/{id}/`` (its chat replies to any controller
replica included) and subscribes to / receives only its own ``cmd``, ``stored`` and
``chat-request``; the controller reads every device topic and publishes
only those. Anonymous clients are let in only when configured (loopback
development), and then without restrictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from sqlalchemy import Engine, select

from controller.broker.passwords import verify_password
from controller.core.db import create_db_engine
from controller.models import MqttCredential
from shared.topics import TopicError, Topics


def topic_allowed(
    *, username: str | None, controller_user: str, topics: Topics, topic: str, action: str
) -> bool:
    """Whether ``username`` may do ``action`` (publish/subscribe/receive) on ``topic``."""
    if username == controller_user:
        if action == Action.PUBLISH:
            return _is_kind(topics, topic, lambda kind: not kind.from_agent)
        return topic.startswith(f"{topics.prefix}/devices/")
    if username is None:
        return False
    try:
        parsed = topics.parse(topic)  # its chat replies to a replica are a level deeper
    except TopicError:  # a filter or a topic outside the grammar
        return False
    if parsed.device_id != username:
        return False
    return parsed.kind.from_agent if action == Action.PUBLISH else not parsed.kind.from_agent


def _is_kind(topics: Topics, topic: str, test: Any) -> bool:
    try:
        return bool(test(topics.parse(topic).kind))
    except TopicError:
        return False


class RegistryAuthPlugin(BaseAuthPlugin):
    """Authenticates the controller account and devices' active credentials."""

    @dataclass
    class Config:
        """Set by :class:`controller.broker.embedded.EmbeddedBroker`."""

        db_url: str = ""
        controller_user: str = "controller"
        controller_password_hash: str = ""
        controller_client_id: str = "edgefleet-controller"
        allow_anonymous: bool = False

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._engine: Engine | None = None

    def _config(self) -> RegistryAuthPlugin.Config:
        return self.context.config

    async def authenticate(self, *, session: Any) -> bool | None:
        """True for a known login with the right password and its own client id."""
        config = self._config()
        username, password = session.username, session.password or ""
        client_id = session.client_id or ""
        if username == config.controller_user:
            return verify_password(password, config.controller_password_hash)
        if username is None:
            return config.allow_anonymous and not self._reserved(client_id)
        if client_id != username:
            return False
        return any(verify_password(password, h) for h in self._device_hashes(username))

    def _reserved(self, client_id: str) -> bool:
        """Client ids an anonymous client may not take: the controller's and any device's."""
        own = self._config().controller_client_id
        if client_id == own or client_id.startswith(f"{own}-"):
            return True
        return bool(self._device_hashes(client_id, active_only=False))

    def _device_hashes(self, username: str, *, active_only: bool = True) -> list[str]:
        if self._engine is None:
            self._engine = create_db_engine(self._config().db_url)
        table = MqttCredential.__table__  # type: ignore[attr-defined]
        query = select(table.c.password_hash).where(table.c.username == username)
        if active_only:
            query = query.where(table.c.revoked_at.is_(None))
        with self._engine.connect() as conn:
            return list(conn.execute(query).scalars())

    async def close(self) -> None:
        """Release the plugin's database connections."""
        if self._engine is not None:
            self._engine.dispose()


class DeviceTopicPlugin(BaseTopicPlugin):
    """Per-device topic ACL (see :func:`topic_allowed`)."""

    @dataclass
    class Config:
        """Set by :class:`controller.broker.embedded.EmbeddedBroker`."""

        topic_prefix: str = "edgefleet/v1"
        controller_user: str = "controller"

    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        """Allow anonymous sessions everything (they exist only when configured)."""
        if session is None or topic is None or action is None:
            return False
        if session.username is None:
            return True
        config = self.context.config
        return topic_allowed(
            username=session.username,
            controller_user=config.controller_user,
            topics=Topics(config.topic_prefix),
            topic=topic,
            action=action,
        )
