"""Loopback ports: a free one, whether one is taken, waiting until one listens."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10_000
"""Picked ports lie between this and the ephemeral range (well-known services sit lower)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Picked at random below the kernel's ephemeral range: a port from that range, once
    closed, may become the local end of any client's outgoing connection before the
    server that was meant for it binds it ("address already in use"), which a busy
    fleet of test processes and their brokers made happen.
    """
    ceiling = _ephemeral_floor()
    if ceiling - LOWEST >= 1000:
        for _ in range(200):
            port = random.randrange(LOWEST, ceiling)
            if not port_in_use(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_floor() -> int:
    """The lowest port the kernel gives outgoing connections (Linux; else IANA's 49152)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could not listen on ``host:port`` (SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def wait_for_port(port: int, *, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    """Block until something accepts connections on ``port``, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")
