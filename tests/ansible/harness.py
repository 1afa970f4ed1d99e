"""Running ansible/site.yml on this machine: every inventory host is a directory under one root.

What is real: ansible-playbook and the roles, a wheel of edgefleet built from this worktree and
installed by the roles with ``pip --no-index`` from the copied wheelhouse, the rendered files,
the installed ``edgefleet`` commands (config checks, the registry export, the controller), a
Mosquitto started with the rendered mosquitto.conf, TLS certificates made with openssl.

What is not: systemd (this container has none, so the roles run with ``*_manage_service:
false`` and the test starts Mosquitto and the controller itself), users and apt packages
(``*_manage_user/packages: false``, everything runs as root), and the dependency wheels.
A full offline wheelhouse (numpy, scipy, llama-cpp-python, ...) is not on this machine and
installing it into three virtualenvs would take minutes, so each virtualenv is made by the
test beforehand, without pip, and sees the shared venv's site-packages minus edgefleet
through a ``.pth`` file; the role's ``--no-index`` install then finds every dependency
satisfied and installs only the edgefleet wheel.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import wait_for_port
from tests.support.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = ROOT / "ansible"
CLASSES = ROOT / "firmware-config" / "classes"
BIN = Path(sys.executable).parent
RECAP_LINE = re.compile(r"^(?P<host>[\w.-]+)\s+:\s+(?P<counts>ok=.*)$", re.MULTILINE)


@dataclass(frozen=True)
class PlaybookRun:
    """One ansible-playbook run: its exit code, its output and the PLAY RECAP per host."""

    returncode: int
    output: str

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        """``{host: {"ok": n, "changed": n, "failed": n, ...}}`` from the PLAY RECAP."""
        return {
            match["host"]: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match["counts"])}
            for match in RECAP_LINE.finditer(self.output)
        }

    def tail(self, lines: int = 60, width: int = 400) -> str:
        """The end of the output (long result lines cut), for assertion messages."""
        return "\n".join(line[:width] for line in self.output.splitlines()[-lines:])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without PYTHONPATH and edgefleet/ansible settings, so nothing leaks in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONPATH" and not k.startswith(("EDGEFLEET_", "ANSIBLE_"))
    }
    path = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    # PIP_CONFIG_FILE: this machine's pip.conf adds find-links; the roles' installs use theirs only
    return env | {"PATH": path, "PIP_CONFIG_FILE": os.devnull, **extra}


def ansible_env(home: Path) -> dict[str, str]:
    """Environment of an ansible command: its own home and temp dirs, no colours."""
    return clean_env(
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
    )


def run_playbook(inventory: Path, home: Path, *args: str) -> PlaybookRun:
    """``ansible-playbook -v --diff site.yml`` from ansible/ with this inventory.

    ``-v --diff`` prints every task's result and every file's changes, so a secret that a task
    without ``no_log`` handled would show up in the output the tests search.
    """
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-v", "--diff", "-i", str(inventory), "site.yml", *args],
        cwd=ANSIBLE_DIR, env=ansible_env(home), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return PlaybookRun(result.returncode, result.stdout + result.stderr)


def build_wheel(wheelhouse: Path, scratch: Path) -> Path:
    """edgefleet's wheel from this worktree (built from a copy, so no build files land here)."""
    source = scratch / "src"
    for name in ("agent", "controller", "shared"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(wheelhouse), str(source)],
        check=True, capture_output=True, env=clean_env(),
    )  # fmt: skip
    (wheel,) = wheelhouse.glob("edgefleet-*.whl")
    return wheel


def dependency_overlay(target: Path) -> Path:
    """The shared venv's site-packages without edgefleet itself, as a directory of symlinks."""
    target.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(("__editable__", "edgefleet-")) or entry.suffix == ".pth":
            continue
        (target / entry.name).symlink_to(entry)
    return target


def prepare_venv(venv: Path, overlay: Path) -> None:
    """A virtualenv without pip that sees ``overlay``, plus a ``pip`` that runs the overlay's."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site_packages,) = (venv / "lib").glob("python3*/site-packages")
    (site_packages / "_edgefleet_test_dependencies.pth").write_text(f"{overlay}\n")
    pip = venv / "bin" / "pip"
    pip.write_text(
        f"#!{venv}/bin/python\nimport sys\nfrom pip._internal.cli.main import main\n"
        "sys.exit(main())\n"
    )
    pip.chmod(0o755)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY='value'`` lines as systemd's EnvironmentFile reads them (comments skipped)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value.strip("'") for key, value in pairs if not key.startswith("#")}


@contextmanager
def running(argv: list[str], *, port: int, log: Path, env: dict[str, str]) -> Iterator[Process]:
    """Start a process, wait for its port, and stop only it afterwards."""
    process = Process(subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                       env=env, cwd=log.parent))  # fmt: skip
    try:
        try:
            # a controller's start (imports, migrations, broker) takes 2-5 s on a quiet
            # machine and over 30 s on a loaded 2-core one; the wait ends when it listens
            wait_for_port(port, timeout=180)
        except TimeoutError:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{argv[0]} did not listen on {port}; {log}:\n{tail}") from None
        yield process
    finally:
        process.stop()


@dataclass
class Process:
    """A process this test started."""

    popen: subprocess.Popen[bytes]

    def reload(self) -> None:
        """SIGHUP, as ``systemctl reload mosquitto`` sends it."""
        self.popen.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """Terminate, then kill if it does not exit within 15 s."""
        stop_process(self.popen, timeout=15)
