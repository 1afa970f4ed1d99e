"""A throwaway PostgreSQL cluster run as the ``postgres`` user on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port


def _pg_bin() -> Path:
    """The newest Debian-packaged PostgreSQL (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()


def _as_postgres(*args: str) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return list(args)


@dataclass
class TempPostgres:
    """initdb + pg_ctl start in a temp dir; ``stop()`` stops it and removes the files."""

    bin_dir: Path = PG_BIN
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="edgefleet-pg-")))

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> TempPostgres:
        """Create and start the cluster (trust auth on loopback only)."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        data = str(self.root / "data")
        subprocess.run(
            _as_postgres(str(self.bin_dir / "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
                         "--no-sync", "-E", "UTF8"),
            check=True, capture_output=True,
        )  # fmt: skip
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres(str(self.bin_dir / "pg_ctl"), "-D", data, "-o", options,
                         "-l", str(self.root / "log"), "-w", "start"),
            check=True, capture_output=True,
        )  # fmt: skip
        return self

    def create_database(self, name: str) -> str:
        """A fresh database; returns its URL."""
        subprocess.run(
            _as_postgres(str(self.bin_dir / "createdb"), "-h", "127.0.0.1",
                         "-p", str(self.port), "-U", "postgres", name),
            check=True, capture_output=True,
        )  # fmt: skip
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the cluster and delete its files."""
        subprocess.run(
            _as_postgres(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"),
                         "-m", "fast", "-w", "stop"),
            check=False, capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)
