"""The local model store: GGUF files downloaded from the controller's registry.

Files are named by sha256. A download goes to ``<sha>.part`` and resumes with
an HTTP Range request (also after a restart), is verified by sha256 and then
atomically renamed into place. Before starting, the free disk is checked and
least-recently-used models are evicted until the new one fits the disk budget;
the serving and rollback models are never evicted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import httpx

from agent.models.download import Attempt, Downloader, DownloadError, Progress, file_size

logger = logging.getLogger(__name__)
DISK_MARGIN_BYTES = 16 * 1_000_000
"""Free space left over after a download, so the outbox and logs can still grow."""
MB = 1_000_000


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks so a multi-GB model never sits in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class StoreError(RuntimeError):
    """A model that cannot be stored: network, disk, budget or hash problem."""


@dataclass
class StoredModel:
    """One verified file in the store."""

    model_id: str
    sha256: str
    size_bytes: int
    last_used: float
    path: Path = field(compare=False)


@dataclass
class DownloadResult:
    """The stored model and how it got there."""

    model: StoredModel
    cached: bool
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def bytes_transferred(self) -> int:
        """Bytes received over the network in this call."""
        return sum(a.bytes_transferred for a in self.attempts)


class ModelStore:
    """Downloads, verifies, indexes and evicts model files under a disk budget."""

    def __init__(
        self,
        root: Path,
        budget_bytes: int,
        *,
        base_url: str | None = None,
        headers: dict[str, str] | None = None,
        progress: Progress | None = None,
        retries: int = 3,
        timeout_s: float = 30.0,
    ) -> None:
        self.root = root
        self.budget_bytes = budget_bytes
        self.base_url = base_url
        root.mkdir(parents=True, exist_ok=True)
        self._client = httpx.Client(headers=headers, timeout=timeout_s, follow_redirects=True)
        self._downloader = Downloader(self._client, retries=retries, progress=progress)
        self._index: dict[str, StoredModel] = self._load_index()

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()

    # --- index -------------------------------------------------------------

    @property
    def _index_path(self) -> Path:
        return self.root / "index.json"

    def _load_index(self) -> dict[str, StoredModel]:
        try:
            raw = json.loads(self._index_path.read_text())
        except (OSError, ValueError):
            raw = {}
        index = {}
        for sha, entry in raw.items():
            path = self.path_for(sha)
            if path.is_file() and path.stat().st_size == entry.get("size_bytes"):
                index[sha] = StoredModel(
                    entry["model_id"], sha, entry["size_bytes"], entry["last_used"], path
                )
        return index

    def _save_index(self) -> None:
        data = {
            sha: {k: v for k, v in asdict(m).items() if k != "path"}
            for sha, m in self._index.items()
        }
        tmp = self._index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self._index_path)

    def path_for(self, sha256: str) -> Path:
        """Where the verified file with this hash lives."""
        return self.root / f"{sha256}.gguf"

    def models(self) -> list[StoredModel]:
        """Every verified model, least recently used first."""
        return sorted(self._index.values(), key=lambda m: m.last_used)

    def get(self, sha256: str) -> StoredModel | None:
        """The stored model with this hash, if present."""
        return self._index.get(sha256)

    def find(self, model_id: str) -> StoredModel | None:
        """The most recently used stored model with this id."""
        matches = [m for m in self.models() if m.model_id == model_id]
        return matches[-1] if matches else None

    def touch(self, sha256: str) -> None:
        """Mark a model as just used (LRU)."""
        if sha256 in self._index:
            self._index[sha256].last_used = time.time()
            self._save_index()

    def used_bytes(self) -> int:
        """Bytes held by verified models."""
        return sum(m.size_bytes for m in self._index.values())

    # --- download ----------------------------------------------------------

    def ensure(
        self, model_id: str, sha256: str, url: str, size_bytes: int, *, protected: set[str]
    ) -> DownloadResult:
        """Return the stored model, downloading (with resume) and verifying it if needed."""
        cached = self.get(sha256)
        if cached is not None:
            self.touch(sha256)
            return DownloadResult(cached, cached=True)
        self._make_room(size_bytes, protected | {sha256})
        part = self.root / f"{sha256}.part"
        self._check_free_disk(size_bytes - file_size(part))
        try:
            attempts = self._downloader.fetch(
                model_id, self._absolute(url), part, size_bytes, etag=f'"{sha256}"'
            )
        except DownloadError as exc:
            raise StoreError(str(exc)) from None
        actual = sha256_file(part)
        if actual != sha256:
            part.unlink(missing_ok=True)
            raise StoreError(f"sha256 mismatch for {model_id}: expected {sha256}, got {actual}")
        os.replace(part, self.path_for(sha256))
        model = StoredModel(model_id, sha256, size_bytes, time.time(), self.path_for(sha256))
        self._index[sha256] = model
        self._save_index()
        logger.info("stored %s (%s, %.1f MB)", model_id, sha256[:12], size_bytes / MB)
        return DownloadResult(model, cached=False, attempts=attempts)

    def fetch_bytes(self, url: str, max_bytes: int) -> bytes:
        """A small file from the same server (a suite), refused once it passes ``max_bytes``."""
        data = bytearray()
        try:
            with self._client.stream("GET", self._absolute(url)) as response:
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise StoreError(f"{url}: larger than {max_bytes} bytes")
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot fetch {url}: {exc}") from None
        return bytes(data)

    def _absolute(self, url: str) -> str:
        if "://" in url or self.base_url is None:
            return url
        return urljoin(self.base_url.rstrip("/") + "/", url.lstrip("/"))

    # --- space ---------------------------------------------------------------

    def _make_room(self, size_bytes: int, protected: set[str]) -> None:
        if size_bytes > self.budget_bytes:
            budget_mb = self.budget_bytes / MB
            need_mb = size_bytes / MB
            raise StoreError(f"model needs {need_mb:.0f} MB, disk budget is {budget_mb:.0f} MB")
        for victim in self.models():
            if self.used_bytes() + size_bytes <= self.budget_bytes:
                return
            if victim.sha256 in protected:
                continue
            logger.info("evicting %s (%s) to make room", victim.model_id, victim.sha256[:12])
            victim.path.unlink(missing_ok=True)
            del self._index[victim.sha256]
            self._save_index()
        if self.used_bytes() + size_bytes > self.budget_bytes:
            raise StoreError(
                f"model needs {size_bytes / MB:.0f} MB; {self.used_bytes() / MB:.0f} MB of the "
                f"{self.budget_bytes / MB:.0f} MB budget are held by models in use "
                "(serving, rollback, or named by the same command)"
            )

    def _check_free_disk(self, remaining: int) -> None:
        free = shutil.disk_usage(self.root).free
        if free < remaining + DISK_MARGIN_BYTES:
            raise StoreError(
                f"not enough free disk: need {remaining / MB:.0f} MB "
                f"(+{DISK_MARGIN_BYTES / MB:.0f} MB margin), {free / MB:.0f} MB free"
            )
