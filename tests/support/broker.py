"""A real Mosquitto broker on a free loopback port, owned by the test that starts it."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port, wait_for_port
from tests.support.processes import stop_process

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


@dataclass
class MosquittoBroker:
    """One mosquitto process with a config written to ``workdir``.

    ``extra_config`` lines are appended to the listener's config (ACL and
    password files for the controller's tests). With ``generated_config`` (a
    mosquitto.conf from ``edgefleet controller mosquitto-config``) that file
    is used as it is, plus logging (and ``user root`` when root); ``port`` must
    then be its device listener's. Stop/start keep the port, so clients can
    reconnect to the same address after an outage.
    """

    workdir: Path
    extra_config: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    generated_config: Path | None = None
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:<port>``."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether this broker's process is alive."""
        return self._process is not None and self._process.poll() is None

    def write_config(self) -> Path:
        """Write mosquitto.conf; anonymous access unless extra_config says otherwise."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        logging = ["log_dest stderr", "log_type error", "log_type warning"]
        if self.generated_config is not None:
            lines = [self.generated_config.read_text(), *logging]
        else:
            lines = [
                f"listener {self.port} 127.0.0.1",
                "persistence false",
                *logging,
                "max_queued_messages 100000",
            ]
        if self.generated_config is None and not any(
            line.startswith("allow_anonymous") for line in self.extra_config
        ):
            lines.append("allow_anonymous true")
        if os.geteuid() == 0:
            # Mosquitto started as root drops to its own user, which cannot read the
            # test's private tmp dirs (password, ACL, TLS and persistence files).
            lines.append("user root")
        config = self.workdir / "mosquitto.conf"
        config.write_text("\n".join(lines + self.extra_config) + "\n")
        return config

    def start(self) -> MosquittoBroker:
        """Start the process and wait until it accepts connections."""
        if self.running:
            return self
        config = self.write_config()
        log = (self.workdir / "mosquitto.log").open("ab")
        self._process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log, stderr=log)
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"mosquitto did not start; see {self.workdir / 'mosquitto.log'}"
            ) from None
        return self

    def stop(self) -> None:
        """Stop only this broker's process."""
        if self._process is None:
            return
        stop_process(self._process)
        self._process = None

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()
