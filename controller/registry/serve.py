"""Model file downloads: Range (resume) and a strong ETag equal to the file's sha256.

Starlette's ``FileResponse`` does the byte ranges and honours ``If-Range``;
this adds the content-derived ETag (so a resumed download can prove it is
continuing the same file) and ``If-None-Match`` for revalidation.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request, Response
from fastapi.responses import FileResponse

GGUF_MEDIA_TYPE = "application/octet-stream"


def etag_for(sha256: str) -> str:
    """The strong entity tag of a model file."""
    return f'"{sha256}"'


def _matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in candidates or etag in candidates


def file_response(request: Request, path: Path, *, sha256: str, filename: str) -> Response:
    """A resumable response for one stored model file."""
    etag = etag_for(sha256)
    headers = {
        "etag": etag,
        "cache-control": "private, max-age=0, must-revalidate",
        "x-content-sha256": sha256,
    }
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(
        path,
        media_type=GGUF_MEDIA_TYPE,
        filename=filename,
        headers=headers,
    )
