"""Where the controller is and who is asking: flags, then environment, then a config file.

Every failure becomes a :class:`CliError` with its own exit code, so scripts can tell an
unreachable controller from a bad token, a missing role or an unknown device.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import httpx
import yaml

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV, TOKEN_ENV, CONFIG_ENV = "EDGEFLEET_URL", "EDGEFLEET_TOKEN", "EDGEFLEET_CONFIG"
TIMEOUT_S = 30.0


class ExitCode(IntEnum):
    """What a failed command exits with, so scripts can tell the failures apart."""

    API_ERROR = 1
    USAGE = 2
    UNREACHABLE = 3
    UNAUTHORIZED = 4
    FORBIDDEN = 5
    NOT_FOUND = 6


EXIT_CODES_HELP = (
    "Exit codes: 0 done, 1 the API refused the request, 2 bad command line or config file, "
    "3 controller unreachable, 4 missing or bad token, 5 the token's role is too low, "
    "6 not found."
)


class CliError(Exception):
    """A failure to report on stderr and exit with ``code``."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def default_config_path() -> Path:
    """``$EDGEFLEET_CONFIG``, else ``$XDG_CONFIG_HOME/edgefleet/client.yaml``."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "edgefleet" / "client.yaml"


def _config_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(ExitCode.USAGE, f"cannot read {path}: {exc}") from None
    if not isinstance(loaded, dict) or set(loaded) - {"url", "token"}:
        raise CliError(ExitCode.USAGE, f"{path}: expected only the keys 'url' and 'token'")
    return {key: str(value) for key, value in loaded.items()}


@dataclass(frozen=True)
class Target:
    """The controller's base URL and the API token to send."""

    url: str
    token: str | None

    @classmethod
    def resolve(cls, url: str | None, token: str | None, config: Path | None) -> Target:
        """Flags win over ``EDGEFLEET_URL``/``EDGEFLEET_TOKEN``, which win over the file."""
        from_file = _config_file(config or default_config_path())
        return cls(
            url=(url or os.environ.get(URL_ENV) or from_file.get("url") or DEFAULT_URL).rstrip("/"),
            token=token or os.environ.get(TOKEN_ENV) or from_file.get("token"),
        )


class ApiClient:
    """Calls ``/api/v1`` with the token; a refusal becomes a :class:`CliError`."""

    def __init__(self, target: Target) -> None:
        self.target = target
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        self._http = httpx.Client(
            base_url=f"{target.url}/api/v1", headers=headers, timeout=TIMEOUT_S
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON body (None for 204); errors mapped to exit codes."""
        if not self.target.token:
            raise CliError(
                ExitCode.UNAUTHORIZED,
                f"no API token: pass --token, set {TOKEN_ENV} or put 'token:' in "
                f"{default_config_path()}",
            )
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(
                ExitCode.UNREACHABLE,
                f"cannot reach the controller at {self.target.url}: {type(exc).__name__}"
                f"{': ' + str(exc) if str(exc) else ''}",
            ) from None
        if response.is_error:
            raise refusal(response)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        """GET with query parameters (None values left out)."""
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def items(self, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
        """Up to ``limit`` rows of a paginated listing, fetched page by page."""
        rows: list[dict[str, Any]] = []
        while len(rows) < limit:
            page = self.get(path, limit=min(500, limit - len(rows)), offset=len(rows), **params)
            rows.extend(page["items"])
            if len(rows) >= page["total"] or not page["items"]:
                break
        return rows


def refusal(response: httpx.Response) -> CliError:
    """The API's own words (``{"error", "detail"}``) with the exit code for its status."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's validation errors
        detail = "; ".join(_validation_lines(detail))
    message = f"{response.status_code}: {detail or response.reason_phrase}"
    code = {
        401: ExitCode.UNAUTHORIZED,
        403: ExitCode.FORBIDDEN,
        404: ExitCode.NOT_FOUND,
    }.get(response.status_code, ExitCode.API_ERROR)
    return CliError(code, message)


def _validation_lines(errors: Iterable[Any]) -> Iterable[str]:
    for error in errors:
        if isinstance(error, dict):
            where = ".".join(str(part) for part in error.get("loc", ())[1:])
            yield f"{where}: {error.get('msg', '')}" if where else str(error.get("msg", ""))
