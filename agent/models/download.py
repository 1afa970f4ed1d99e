"""Resumable HTTP download of one file into a ``.part`` file (httpx, Range requests)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""(model_id, bytes_done, bytes_total)"""


class DownloadError(RuntimeError):
    """A download that cannot continue (bad status, wrong range, too many bytes, or gave up)."""


@dataclass(frozen=True)
class Attempt:
    """One HTTP request of a download: where it started and what it moved."""

    start_offset: int
    bytes_transferred: int
    status_code: int | None


class Downloader:
    """Fills ``part`` up to ``size`` bytes, resuming from what is already there."""

    def __init__(
        self, client: httpx.Client, *, retries: int = 3, progress: Progress | None = None
    ) -> None:
        self.client = client
        self.retries = retries
        self.progress = progress
        self._logged_decile = -1

    def fetch(
        self, model_id: str, url: str, part: Path, size: int, *, etag: str | None = None
    ) -> list[Attempt]:
        """Download until complete; retries resume with Range. Raise DownloadError if not done.

        With ``etag``, a resume sends ``If-Range`` so a server whose file changed sends the
        whole new file (200) instead of splicing two versions together.
        """
        attempts: list[Attempt] = []
        self._logged_decile = -1
        for attempt in range(1, self.retries + 1):
            offset = file_size(part)
            if offset > size:
                part.unlink()
                offset = 0
            if offset == size:
                return attempts
            try:
                attempts.append(self._request(model_id, url, part, offset, size, etag))
            except _Interrupted as exc:
                attempts.append(exc.attempt)
                logger.warning(
                    "download of %s interrupted at %d/%d bytes (attempt %d/%d): %s",
                    *(model_id, file_size(part), size, attempt, self.retries, exc),
                )
                time.sleep(min(2.0, 0.2 * attempt))
        if file_size(part) == size:
            return attempts
        raise DownloadError(
            f"download of {model_id} incomplete: {file_size(part)} of {size} bytes; it will resume"
        )

    def _request(
        self, model_id: str, url: str, part: Path, offset: int, size: int, etag: str | None
    ) -> Attempt:
        headers = {"Accept-Encoding": "identity"}  # bytes on disk must be the file's bytes
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if etag:
                headers["If-Range"] = etag
        moved, status = 0, None
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                offset = _accepted_offset(response, offset, url)
                with part.open("r+b" if part.exists() else "wb") as out:
                    out.seek(offset)
                    out.truncate()
                    for chunk in response.iter_raw():  # unbuffered: keep every byte received
                        if offset + moved + len(chunk) > size:
                            raise DownloadError(f"{url} sends more than the announced {size} bytes")
                        out.write(chunk)
                        moved += len(chunk)
                        self._report(model_id, offset + moved, size)
                    out.flush()
                    os.fsync(out.fileno())
        except httpx.HTTPError as exc:
            attempt = Attempt(offset, moved, status)
            raise _Interrupted(str(exc) or type(exc).__name__, attempt) from exc
        return Attempt(offset, moved, status)

    def _report(self, model_id: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(model_id, done, total)
        decile = done * 10 // max(total, 1)
        if decile != self._logged_decile:
            self._logged_decile = decile
            logger.info("downloading %s: %d%%", model_id, decile * 10)


class _Interrupted(Exception):
    def __init__(self, message: str, attempt: Attempt) -> None:
        super().__init__(message)
        self.attempt = attempt


def file_size(path: Path) -> int:
    """Size of ``path``, 0 if it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _accepted_offset(response: httpx.Response, offset: int, url: str) -> int:
    """The offset the response body starts at (0 if the server ignored the Range)."""
    if response.status_code == 200:
        return 0
    if response.status_code == 206:
        content_range = response.headers.get("content-range", "")
        start = content_range.removeprefix("bytes ").split("-", 1)[0]
        if start.isdigit() and int(start) == offset:
            return offset
        raise DownloadError(f"{url}: Content-Range {content_range!r} does not start at {offset}")
    raise DownloadError(f"{url}: HTTP {response.status_code}")
