"""An embedded MQTT broker (amqtt) for zero-setup runs, in its own thread and event loop.

amqtt speaks MQTT 3.1.1 only: no shared subscriptions and no session-expiry
property, so with it the ingest client connects with 3.1.1 and a persistent
(``clean_session=False``) session. With :class:`EmbeddedAuth` it checks the
same logins and per-device ACLs as the generated Mosquitto files
(``embedded_auth.py``), client ids bound to logins included; without, it
is anonymous and open (tests only). The controller falls back to it only
where Mosquitto is not installed (``controller.broker.local``): what it has
acknowledged but not yet delivered dies with the controller's process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")
PLUGINS = "controller.broker.embedded_auth"


@dataclass(frozen=True)
class EmbeddedAuth:
    """Logins and ACLs for the embedded broker, read from the controller's database."""

    db_url: str = field(repr=False)
    controller_user: str
    controller_password_hash: str = field(repr=False)
    controller_client_id: str
    topic_prefix: str
    allow_anonymous: bool = False


class EmbeddedBroker:
    """amqtt running in a background thread; ``start()`` returns once it accepts connections."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 1883, auth: EmbeddedAuth | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.auth = auth
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        """``mqtt://host:port`` for clients."""
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        listeners = {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}}
        if self.auth is None:
            plugins: dict[str, Any] = {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            }
        else:
            plugins = {
                f"{PLUGINS}.RegistryAuthPlugin": {
                    "db_url": self.auth.db_url,
                    "controller_user": self.auth.controller_user,
                    "controller_password_hash": self.auth.controller_password_hash,
                    "controller_client_id": self.auth.controller_client_id,
                    "allow_anonymous": self.auth.allow_anonymous,
                },
                f"{PLUGINS}.DeviceTopicPlugin": {
                    "topic_prefix": self.auth.topic_prefix,
                    "controller_user": self.auth.controller_user,
                },
            }
        return {"listeners": listeners, "plugins": plugins}

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        """Start the broker thread and wait until the listener is up (or raise)."""
        if self._thread is not None:
            return self
        if self.host not in LOOPBACK and (self.auth is None or self.auth.allow_anonymous):
            logger.warning(
                "embedded broker on %s accepts anonymous clients; use Mosquitto with "
                "`edgefleet controller mosquitto-config` for a networked fleet",
                self.host,
            )
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="embedded-broker", daemon=True
        )
        self._thread.start()
        started.result(timeout=timeout)
        logger.info("embedded MQTT broker listening on %s", self.url)
        return self

    def _run(self, started: Future[None]) -> None:
        from amqtt.broker import Broker

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            self._broker = Broker(self._config(), loop=loop)
            await self._broker.start()

        try:
            loop.run_until_complete(boot())
        except BaseException as exc:  # reported to the starting thread, not lost
            started.set_exception(exc)
            loop.close()
            return
        started.set_result(None)
        loop.run_forever()
        loop.close()

    def sync(self) -> bool:
        """Nothing to do: the plugins read the logins from the database at each connect."""
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the broker down and join its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if not loop.is_closed():
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
            try:
                future.result(timeout=timeout)
            except Exception:
                logger.exception("embedded broker did not shut down cleanly")
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=timeout)
        self._thread = None
        self._loop = None
