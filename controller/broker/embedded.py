"""An embedded MQTT broker (amqtt) for zero-setup runs, in its own thread and event loop.

amqtt speaks MQTT 3.1.1 only: no shared subscriptions and no session-expiry
property, so with it the ingest client connects with 3.1.1 and a persistent
(``clean_session=False``) session. It is anonymous: it binds to loopback by
default, and a warning is logged when it is bound anywhere else. Production
fleets use Mosquitto with the files ``edgefleet controller mosquitto-config``
writes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class EmbeddedBroker:
    """amqtt running in a background thread; ``start()`` returns once it accepts connections."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        """``mqtt://host:port`` for clients."""
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        """Start the broker thread and wait until the listener is up (or raise)."""
        if self._thread is not None:
            return self
        if self.host not in LOOPBACK:
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
