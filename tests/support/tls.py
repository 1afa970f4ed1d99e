"""A throwaway PKI made with the real ``openssl``: a CA, a server and a client certificate."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _openssl(command: str, *extra: str, cwd: Path) -> None:
    """Run ``openssl`` with ``command`` split on spaces (no argument here holds one)."""
    subprocess.run(["openssl", *command.split(), *extra], cwd=cwd, check=True, capture_output=True)


def make_pki(root: Path, *, client_cn: str = "dev-tls") -> Path:
    """ca.crt, server.crt/key for 127.0.0.1 and localhost, client.crt/key for ``client_cn``."""
    root.mkdir(parents=True)
    _openssl(
        "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.crt",
        cwd=root,
    )
    (root / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn, ext in (
        ("server", "127.0.0.1", ["-extfile", "san.ext"]),
        ("client", client_cn, []),
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
        key.chmod(0o644)  # Mosquitto may read them after dropping root
    return root
