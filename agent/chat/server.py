"""Runs the chat API with uvicorn in a background thread, with a clean stop."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from fastapi import FastAPI

logger = logging.getLogger(__name__)


class ChatServer:
    """One uvicorn server for the chat API; ``port`` is known after ``start``."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start serving and wait until the socket is bound."""
        self._thread = threading.Thread(target=self._server.run, name="chat-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"chat API did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        sockets = self._server.servers[0].sockets if self._server.servers else []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        logger.info("chat API on %s", self.url)

    def stop(self) -> None:
        """Stop accepting requests and wait for the thread."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
