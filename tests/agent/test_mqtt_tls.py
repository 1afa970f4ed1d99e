"""mqtts:// with a client certificate, against a real Mosquitto TLS listener."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.daemon_support import make_agent, wait_until
from tests.support.tls import make_pki

pytestmark = pytest.mark.timeout(120)


def test_agent_connects_over_tls_with_a_client_certificate(mosquitto_factory, tmp_path: Path):
    pki = make_pki(tmp_path / "pki")
    broker = mosquitto_factory(
        [
            f"cafile {pki / 'ca.crt'}",
            f"certfile {pki / 'server.crt'}",
            f"keyfile {pki / 'server.key'}",
            "require_certificate true",
            "use_identity_as_username true",
        ]
    )
    common = {
        "device_id": "dev-tls",
        "broker_url": f"mqtts://127.0.0.1:{broker.port}",
        "tls_ca_file": str(pki / "ca.crt"),
    }
    good = make_agent(
        tmp_path / "a",
        broker.port,
        **common,
        tls_cert_file=str(pki / "client.crt"),
        tls_key_file=str(pki / "client.key"),
    )
    good.start()
    try:
        assert good.link.wait_connected(20)
        assert wait_until(lambda: good.outbox.depth() == 0, 20)  # PUBACKs came back over TLS
    finally:
        good.stop()
    anonymous = make_agent(tmp_path / "b", broker.port, **common)
    anonymous.start()
    try:
        assert not anonymous.link.wait_connected(2)  # no client certificate: refused
    finally:
        anonymous.stop()
