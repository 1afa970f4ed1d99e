"""The model file store: GGUFs on disk, named by their sha256, written by streaming.

Files arrive from a local path or an HTTP upload. Either way the bytes go
through one :class:`IncomingFile` that hashes while writing to a temporary
file in the store's own directory, so nothing larger than a chunk is ever held
in memory and a finished file appears atomically (``rename``) or not at all.
A file that is not a GGUF is refused at its first four bytes; a truncated one
after its header is read with :func:`shared.gguf_info.read_gguf_info`.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from shared.gguf_info import GGUF_MAGIC, GgufError, GgufInfo, read_gguf_info

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1_048_576
DEFAULT_MAX_BYTES = 64 * 1024**3
SHA256_HEX_CHARS = 64


class RegistryError(ValueError):
    """A file the registry refuses, with a reason fit for the API client or CLI user."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class StoredFile:
    """A verified GGUF in the store."""

    path: Path
    sha256: str
    size_bytes: int
    info: GgufInfo


class IncomingFile:
    """One file being written into the store: feed chunks, then ``finish`` or ``abort``."""

    def __init__(self, store: ModelStore) -> None:
        self._store = store
        self._tmp = store.incoming_dir / f"{uuid.uuid4().hex}.part"
        self._handle = self._tmp.open("xb")
        self._hash = hashlib.sha256()
        self._size = 0
        self._head = b""

    def feed(self, chunk: bytes) -> None:
        """Append ``chunk``; refuse early when it cannot become a GGUF or is too large."""
        if not chunk:
            return
        self._size += len(chunk)
        if self._size > self._store.max_bytes:
            raise RegistryError(
                "too_large", f"file exceeds the registry limit of {self._store.max_bytes} bytes"
            )
        if len(self._head) < len(GGUF_MAGIC):
            self._head += chunk[: len(GGUF_MAGIC) - len(self._head)]
            if not GGUF_MAGIC.startswith(self._head):
                # what it starts with instead is not repeated: it may be a secret file
                raise RegistryError("not_gguf", "not a GGUF file (it does not start with 'GGUF')")
        self._hash.update(chunk)
        try:
            self._handle.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            self.abort()
            raise RegistryError("disk_full", "the registry's disk is full") from None

    def finish(self) -> StoredFile:
        """Validate the complete file and move it to its content-addressed name."""
        self._handle.close()
        try:
            info = read_gguf_info(self._tmp)
        except GgufError as exc:
            self.abort()
            raise RegistryError(_gguf_reason(str(exc)), _without_path(str(exc))) from None
        except BaseException:  # a bug or a full disk: still no orphan file
            self.abort()
            raise
        sha256 = self._hash.hexdigest()
        final = self._store.path_for(sha256)
        if final.exists():
            self._tmp.unlink()
        else:
            os.replace(self._tmp, final)
        info = dataclasses.replace(info, path=final)
        logger.info("stored model file %s (%d bytes)", sha256, self._size)
        return StoredFile(path=final, sha256=sha256, size_bytes=self._size, info=info)

    def abort(self) -> None:
        """Drop the partial file (also when closing it fails: a full disk cannot flush)."""
        try:
            self._handle.close()
        except OSError:
            pass
        self._tmp.unlink(missing_ok=True)


class ModelStore:
    """GGUF files under ``root``, one per distinct content."""

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.incoming_dir = self.root / ".incoming"

    def path_for(self, sha256: str) -> Path:
        """Where the file with this digest lives (whether or not it exists)."""
        if len(sha256) != SHA256_HEX_CHARS or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / f"{sha256}.gguf"

    def begin(self) -> IncomingFile:
        """Start receiving a file (the directories are created on first use)."""
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        return IncomingFile(self)

    def import_path(self, source: Path) -> StoredFile:
        """Copy a local file into the store, streamed and verified."""
        source = Path(source)
        if not source.is_file():
            raise RegistryError("not_found", f"{source} is not a file")
        incoming = self.begin()
        try:
            with source.open("rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    incoming.feed(chunk)
        except BaseException:
            incoming.abort()
            raise
        return incoming.finish()

    def delete(self, sha256: str) -> bool:
        """Remove a file; False if it was not there."""
        path = self.path_for(sha256)
        if not path.exists():
            return False
        path.unlink()
        return True


def _gguf_reason(message: str) -> str:
    if "truncated" in message:
        return "truncated"
    if "not a GGUF" in message:
        return "not_gguf"
    return "bad_gguf"


def _without_path(message: str) -> str:
    """GgufError messages start with the (temporary) path; clients need only the reason."""
    _, sep, rest = message.partition(": ")
    return rest if sep else message
