"""Ports the demo and the tests pick for their servers."""

from __future__ import annotations

import socket

from controller.demo.ports import _ephemeral_floor, free_port, port_in_use


def test_a_picked_port_is_free_and_below_the_ephemeral_range() -> None:
    floor = _ephemeral_floor()
    picked = {free_port() for _ in range(20)}
    assert all(port < floor for port in picked)  # never a client connection's local port
    assert len(picked) > 1  # random: two processes rarely pick the same one
    port = picked.pop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert port_in_use(port)
    assert not port_in_use(port)
