"""A Mosquitto child process the controller starts, watches and restarts.

This is the default broker wherever Mosquitto is installed: it persists
queued messages to the data dir, so a message the broker acknowledged to a
device survives a crash of the controller (the embedded pure-Python broker
lives inside the controller's process and dies with it). The child gets
SIGTERM when the controller's process dies, even by SIGKILL (Linux parent-death
signal), and Mosquitto saves its state on SIGTERM; the next controller start
stops any leftover child of the same config before starting its own.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from controller.broker.mosquitto import (
    Account,
    BrokerOptions,
    Listeners,
    MosquittoFiles,
    current_user,
    files_in,
    write_mosquitto_files,
)
from shared.topics import Topics

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
RESTART_DELAY_S = 1.0
STALE_EXIT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class MosquittoSetup:
    """What the supervised broker is started with."""

    binary: str
    directory: Path
    topics: Topics
    controller_user: str
    controller_password: str = field(repr=False)
    listeners: Listeners
    max_packet_bytes: int


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the thread that started us ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class SupervisedMosquitto:
    """Owns one Mosquitto child: files, start, reload on credential changes, restart on exit."""

    def __init__(self, setup: MosquittoSetup, accounts: Callable[[], list[Account]]) -> None:
        self.setup = setup
        self.files: MosquittoFiles = files_in(setup.directory)
        self.restarts = 0
        self._accounts = accounts
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._sync_pending = threading.Event()
        self._lock = threading.Lock()

    @property
    def pid_file(self) -> Path:
        """Where the child's pid is kept, to stop a leftover child on the next start."""
        return self.setup.directory / "mosquitto.pid"

    @property
    def log_file(self) -> Path:
        """Mosquitto's own log (errors, warnings, notices)."""
        return self.setup.directory / "mosquitto.log"

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        process = self._process
        return process is not None and process.poll() is None

    def start(self, timeout: float = 15.0) -> SupervisedMosquitto:
        """Write the files, stop a leftover child, start ours; return once both listeners accept."""
        self._write_files()
        self._stop_leftover()
        self._stopping.clear()
        spawned = threading.Event()
        self._thread = threading.Thread(
            target=self._supervise, args=(spawned,), name="mosquitto-supervisor", daemon=True
        )
        self._thread.start()
        spawned.wait(timeout)
        deadline = time.monotonic() + timeout
        listeners = self.setup.listeners
        device_host = listeners.device_bind or "127.0.0.1"
        while time.monotonic() < deadline:
            if _accepts(device_host, listeners.device_port) and _accepts(
                listeners.controller_bind, listeners.controller_port
            ):
                logger.info(
                    "Mosquitto (pid %s) listening: devices on %s:%d, controller on %s:%d; "
                    "persistence in %s",
                    self._process.pid if self._process else "?",
                    device_host, listeners.device_port,
                    listeners.controller_bind, listeners.controller_port,
                    self.setup.directory / "data",
                )  # fmt: skip
                return self
            time.sleep(0.05)
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"Mosquitto did not start within {timeout:.0f} s; its log:\n{tail}")

    def sync(self) -> bool:
        """Rewrite the password and ACL files and make the child re-read them (SIGHUP).

        On failure the previous files stay in place and the supervisor retries.
        """
        try:
            self._write_files()
        except (OSError, ValueError) as exc:
            logger.error("could not write the broker files (%s); the old ones stay; retrying", exc)
            self._sync_pending.set()
            return False
        self._sync_pending.clear()
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGHUP)
        return True

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the child (Mosquitto saves its state on SIGTERM) and the supervisor."""
        self._stopping.set()
        with self._lock:
            process = self._process
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    logger.error("Mosquitto did not exit on SIGTERM; killing it")
                    process.kill()
                    process.wait()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.pid_file.unlink(missing_ok=True)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of Mosquitto's log, for error messages."""
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def _write_files(self) -> None:
        setup = self.setup
        write_mosquitto_files(
            setup.directory,
            topics=setup.topics,
            controller_user=setup.controller_user,
            controller_password=setup.controller_password,
            accounts=self._accounts(),
            listeners=setup.listeners,
            options=BrokerOptions(
                max_packet_bytes=setup.max_packet_bytes,
                persistence_dir=setup.directory / "data",
                run_as=current_user(),
                log_to_stderr=True,
            ),
        )

    def _supervise(self, spawned: threading.Event) -> None:
        """Start the child from this thread (its parent-death signal follows this thread)."""
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    break
                process = self._spawn()
            spawned.set()
            while process.poll() is None and not self._stopping.is_set():
                try:
                    process.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    if self._sync_pending.is_set():
                        self.sync()
            if self._stopping.is_set():
                break
            self.restarts += 1
            logger.error(
                "Mosquitto exited with %s; restarting it (restart %d). Its log:\n%s",
                process.returncode, self.restarts, self.log_tail(),
            )  # fmt: skip
            self._stopping.wait(RESTART_DELAY_S)

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                [self.setup.binary, "-c", str(self.files.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # Ctrl-C reaches the controller, which stops us in order
                preexec_fn=_die_with_parent,
            )
        self._process = process
        self.pid_file.write_text(f"{process.pid}\n")
        return process

    def _stop_leftover(self) -> None:
        """Stop a child of an earlier controller run still using our config (and our port)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if str(self.files.config).encode() not in cmdline:
            return
        logger.warning("stopping a Mosquitto (pid %d) left by an earlier controller run", pid)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STALE_EXIT_TIMEOUT_S
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
