"""A TCP proxy that delays, cuts and silently stalls connections: a bad network for tests.

This kernel has no ``netem`` qdisc (``tc qdisc add ... netem`` answers
"Specified qdisc kind is unknown"), so delay and loss are made here, between
a client and a real server. TCP cannot lose single bytes without breaking
the stream, so loss takes the two forms a device sees: a connection *cut*
(both sides get a reset or EOF) and a connection that *stalls* (everything
after is swallowed while the sockets stay open, until a keepalive gives up).
Each chunk forwarded draws once for each, so the odds scale with traffic.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass
class Conditions:
    """What the network does to every chunk; change it while the proxy runs."""

    delay_s: float = 0.0
    jitter_s: float = 0.0
    cut_probability: float = 0.0
    stall_probability: float = 0.0


class _Pipe:
    """One direction of one connection: read, hold for the delay, write in order."""

    def __init__(self, proxy: NetProxy, source: socket.socket, target: socket.socket) -> None:
        self.proxy, self.source, self.target = proxy, source, target
        self.queue: deque[tuple[float, bytes]] = deque()
        self.ready = threading.Condition()
        self.closed = False

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        while not self.closed:
            try:
                data = self.source.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.proxy.close_pair(self.source, self.target)
                return
            fate = self.proxy.fate(len(data))
            if fate == "cut":
                self.proxy.close_pair(self.source, self.target)
                return
            if fate == "stall":
                self.proxy.stall(self.source)
            if self.proxy.stalled(self.source):
                continue  # swallowed; the socket stays open
            conditions = self.proxy.conditions
            due = time.monotonic() + conditions.delay_s
            due += self.proxy.rng.uniform(0, conditions.jitter_s)
            with self.ready:
                if self.queue:
                    due = max(due, self.queue[-1][0])  # TCP keeps order
                self.queue.append((due, data))
                self.ready.notify()

    def _write(self) -> None:
        while True:
            with self.ready:
                while not self.queue and not self.closed:
                    self.ready.wait(0.2)
                if self.closed and not self.queue:
                    return
                due, data = self.queue.popleft()
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                self.target.sendall(data)
            except OSError:
                self.proxy.close_pair(self.source, self.target)
                return

    def close(self) -> None:
        with self.ready:
            self.closed = True
            self.queue.clear()
            self.ready.notify_all()


class NetProxy:
    """Listens on a loopback port and forwards to ``upstream`` under :class:`Conditions`."""

    def __init__(self, upstream_port: int, *, host: str = "127.0.0.1", seed: int = 0) -> None:
        self.upstream = (host, upstream_port)
        self.conditions = Conditions()
        self.rng = random.Random(seed)
        self.cuts = 0
        self.stalls = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._pipes: dict[socket.socket, _Pipe] = {}
        self._stalled: set[socket.socket] = set()
        self._partitioned = False
        self._server = socket.create_server((host, 0))
        self.port = self._server.getsockname()[1]
        self._running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def fate(self, size: int) -> str | None:
        """Draw what happens to one chunk: "cut", "stall" or None (delivered)."""
        with self._lock:
            if self.rng.random() < self.conditions.cut_probability:
                self.cuts += 1
                return "cut"
            if self.rng.random() < self.conditions.stall_probability:
                self.stalls += 1
                return "stall"
        return None

    def stall(self, sock: socket.socket) -> None:
        """Swallow everything on this connection from now on (both directions)."""
        with self._lock:
            pipe = self._pipes.get(sock)
            if pipe is not None:
                self._stalled.update((pipe.source, pipe.target))

    def stalled(self, sock: socket.socket) -> bool:
        """Whether this connection is swallowing its traffic."""
        with self._lock:
            return sock in self._stalled

    def partition(self, seconds: float) -> None:
        """Cut every connection and refuse new ones for ``seconds``."""
        self._partitioned = True
        self.cut_all()
        time.sleep(seconds)
        self._partitioned = False

    def cut_all(self) -> None:
        """Close every open connection."""
        with self._lock:
            pairs = {(p.source, p.target) for p in self._pipes.values()}
        for source, target in pairs:
            self.close_pair(source, target)

    def close_pair(self, a: socket.socket, b: socket.socket) -> None:
        """Close both sockets of a connection and stop its pipes."""
        with self._lock:
            pipes = [self._pipes.pop(s, None) for s in (a, b)]
            self._stalled.difference_update((a, b))
        for pipe in pipes:
            if pipe is not None:
                pipe.close()
        for sock in (a, b):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self) -> None:
        while self._running:
            try:
                client, _address = self._server.accept()
            except OSError:
                return
            if self._partitioned:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up, down = _Pipe(self, client, server), _Pipe(self, server, client)
            with self._lock:
                self.connections += 1
                self._pipes[client], self._pipes[server] = up, down
            up.start()
            down.start()

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._running = False
        self._server.close()
        self.cut_all()
