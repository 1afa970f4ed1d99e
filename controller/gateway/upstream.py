"""Calls to a device's chat API, and what each outcome means for the gateway.

A device that cannot be reached, answers 5xx, refuses the gateway's credential, does not
serve the model after all, or cuts its stream before the first token has *failed*: the
request may go to another device, since the user has seen nothing. A 429 means *busy*;
400/413/422 mean the request itself is wrong, which no other device would change.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from controller.gateway.routing import Route
from controller.gateway.settings import GatewaySettings

CHAT_PATH = "/v1/chat/completions"
REQUEST_ERRORS = frozenset({400, 413, 422})
MAX_ERROR_CHARS = 300
"""A device's error text is cut to this many characters before it is passed on."""


class DeviceFailed(Exception):
    """The device failed before its first token; another device may answer instead."""


class DeviceUnreachable(DeviceFailed):
    """No connection to the device's chat API (behind NAT, a firewall, or gone)."""


class DeviceBusy(Exception):
    """The device's queue is full; it said when to come back."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"busy, retry after {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s


class RequestRefused(Exception):
    """The device refused the request itself (too long, malformed): the caller's to fix."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def outcome_of(status: int, detail: str, retry_after: str | None) -> Exception:
    """The exception for a device's non-200 answer."""
    if status == 429:
        try:
            return DeviceBusy(max(1.0, float(retry_after or 1)))
        except ValueError:
            return DeviceBusy(1.0)
    if status in REQUEST_ERRORS:
        return RequestRefused(status, detail[:MAX_ERROR_CHARS])
    return DeviceFailed(f"answered {status}")


class Closable(Protocol):
    """What carries a device's stream: an HTTP response, or a request over the MQTT link."""

    async def aclose(self) -> None:
        """Stop listening; the device stops generating for nobody."""


@dataclass
class DeviceStream:
    """A device's answer stream, held back until its first token arrived."""

    route: Route
    head: list[str]
    rest: AsyncIterator[str]
    response: Closable

    async def lines(self) -> AsyncIterator[str]:
        """Every line of the stream: the held-back head, then the rest as it comes."""
        for line in self.head:
            yield line
        async for line in self.rest:
            yield line

    async def aclose(self) -> None:
        """Close the connection (a device generating for nobody stops at its next step)."""
        await self.response.aclose()


def completion_of(text: str) -> dict[str, Any]:
    """A device's whole answer as a completion object, or DeviceFailed."""
    try:
        answer = json.loads(text)
    except ValueError:
        raise DeviceFailed("answered something other than JSON") from None
    if not isinstance(answer, dict):
        raise DeviceFailed("answered something other than a completion")
    return answer


def data_of(line: str) -> dict[str, Any] | None:
    """The JSON object of a server-sent ``data:`` line, None for anything else."""
    if not line.startswith("data:"):
        return None
    try:
        value = json.loads(line[5:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def content_of(payload: dict[str, Any] | None) -> str:
    """The answer text of a whole answer or of one streamed chunk ("" if none)."""
    choices = payload.get("choices") if payload else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    part = (choice.get("message") or choice.get("delta")) if isinstance(choice, dict) else None
    text = part.get("content") if isinstance(part, dict) else None
    return text if isinstance(text, str) else ""


def tag_device(payload: dict[str, Any], device_id: str) -> dict[str, Any]:
    """Say in the reply's ``edgefleet`` extension which device answered."""
    extension = payload.get("edgefleet")
    payload["edgefleet"] = {
        **(extension if isinstance(extension, dict) else {}),
        "device_id": device_id,
    }
    return payload


def first_token(line: str) -> bool:
    """Whether ``line`` carries answer text or the end: past it, no other device may answer."""
    if line.strip() == "data: [DONE]":
        return True
    data = data_of(line)
    if data is None:
        return False
    if "error" in data:
        error = data["error"] if isinstance(data["error"], dict) else {}
        code = error.get("code")
        raise outcome_of(
            code if isinstance(code, int) else 500, str(error.get("message", "")), None
        )
    choice = (data.get("choices") or [{}])[0]
    return bool(content_of(data)) or choice.get("finish_reason") is not None


def _url(route: Route) -> str:
    if route.chat_url is None:
        raise DeviceUnreachable("the device reported no chat URL the gateway may use")
    return route.chat_url + CHAT_PATH


class DeviceClient:
    """One pooled HTTP client for every device's chat API."""

    def __init__(self, settings: GatewaySettings) -> None:
        headers = {}
        if settings.device_token is not None:
            headers["Authorization"] = f"Bearer {settings.device_token.get_secret_value()}"
        timeout = httpx.Timeout(settings.first_token_timeout_s, connect=settings.connect_timeout_s)
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout, trust_env=False)

    async def complete(self, route: Route, body: dict[str, Any]) -> dict[str, Any]:
        """A whole answer from the device."""
        try:
            response = await self._client.post(_url(route), json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise DeviceUnreachable(type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise DeviceFailed(type(exc).__name__) from None
        if response.status_code != 200:
            retry = response.headers.get("Retry-After")
            raise outcome_of(response.status_code, response.text, retry)
        return completion_of(response.text)

    async def stream(self, route: Route, body: dict[str, Any]) -> DeviceStream:
        """Open the device's stream and read it up to its first token."""
        request = self._client.build_request("POST", _url(route), json=body)
        try:
            response = await self._client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise DeviceUnreachable(type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise DeviceFailed(type(exc).__name__) from None
        try:
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                raise outcome_of(response.status_code, text, response.headers.get("Retry-After"))
            lines = response.aiter_lines()
            head: list[str] = []
            async for line in lines:
                head.append(line)
                if first_token(line):
                    return DeviceStream(route, head, lines, response)
            raise DeviceFailed("the stream ended before the first token")
        except httpx.HTTPError as exc:
            await response.aclose()
            raise DeviceFailed(type(exc).__name__) from None
        except BaseException:
            await response.aclose()
            raise

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._client.aclose()
