"""mqtts:// with a client certificate, against a real Mosquitto TLS listener."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.agent.daemon_support import make_agent, wait_until

pytestmark = pytest.mark.timeout(120)


def _openssl(command: str, *extra: str, cwd: Path) -> None:
    """Run ``openssl`` with ``command`` split on spaces (no argument here holds one)."""
    subprocess.run(["openssl", *command.split(), *extra], cwd=cwd, check=True, capture_output=True)


def _pki(root: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate for dev-tls."""
    root.mkdir()
    _openssl(
        "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.crt",
        cwd=root,
    )
    (root / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, cn, ext in (
        ("server", "127.0.0.1", ["-extfile", "san.ext"]),
        ("client", "dev-tls", []),
    ):
        _openssl(
            f"req -newkey rsa:2048 -nodes -subj /CN={cn} -keyout {name}.key -out {name}.csr",
            cwd=root,
        )
        _openssl(
            f"x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
            f" -out {name}.crt",
            *ext,
            cwd=root,
        )
    for key in root.glob("*.key"):
        key.chmod(0o644)
    return root


def test_agent_connects_over_tls_with_a_client_certificate(mosquitto_factory, tmp_path: Path):
    pki = _pki(tmp_path / "pki")
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
