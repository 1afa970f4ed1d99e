"""The request a continuing device gets, and the usage the client sees (pure, no I/O)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from controller.gateway.continuation import Handover, continuation_request
from controller.gateway.routing import Route
from controller.gateway.upstream import DeviceStream
from shared.chat import ChatRequest

ASKED = [{"role": "user", "content": "Tell me a story"}]


def test_the_text_sent_becomes_the_partial_answer_with_the_tokens_left() -> None:
    request = ChatRequest.model_validate(
        {"messages": ASKED, "max_tokens": 100, "strategy": "refine:1", "stream": True}
    )
    continued = continuation_request(request, "Once upon", 2)
    body = continued.model_dump(exclude_none=True)
    assert body["messages"][-1] == {"role": "assistant", "content": "Once upon"}
    assert body["continue_final_message"] is True and "strategy" not in body
    assert body["max_tokens"] == 98 and body["stream"] is True
    assert ChatRequest.model_validate(body) == continued  # what the device will accept


def test_a_continued_continuation_extends_its_partial_answer() -> None:
    partial = [*ASKED, {"role": "assistant", "content": "Once "}]
    request = ChatRequest.model_validate({"messages": partial, "continue_final_message": True})
    body = continuation_request(request, "upon", 1).model_dump(exclude_none=True)
    assert body["messages"] == [*ASKED, {"role": "assistant", "content": "Once upon"}]
    assert "max_tokens" not in body  # the device's default, for the rest alone


def test_the_client_sees_the_whole_answers_usage_the_device_keeps_its_own() -> None:
    route = Route("agent-b", "m", "http://b", None)
    stream = DeviceStream(route, [], _nothing(), httpx.Response(200))
    handover = Handover(stream, failed=route, at_chars=9, relayed_tokens=2)
    final: dict[str, Any] = {"usage": {"prompt_tokens": 12, "completion_tokens": 5}}
    assert handover.merged_usage(final) == {
        "prompt_tokens": 10,
        "completion_tokens": 7,
        "total_tokens": 17,
    }
    assert handover.usage == {"prompt_tokens": 12, "completion_tokens": 5}


async def _nothing() -> AsyncIterator[str]:
    return
    yield ""
