"""The device's local chat API: OpenAI-compatible, requests batched by the model, bounded queue.

``POST /v1/chat/completions`` accepts the OpenAI request shape plus the
extension fields ``strategy`` (``direct``, ``refine:K``, ``verify-refine``,
``vote:K``; default: the assignment's) and the older ``refine`` (true is
``refine:1``), and vLLM's ``continue_final_message`` (the last message is a
partial assistant answer to go on with; served direct). With a strategy other
than direct the last user message is the question and a system message is
kept; earlier turns are not used. Streaming then sends the served answer as
one chunk, since only it is what the user should see.
A streaming client that disconnects frees its sequence at the model's next step.
Answers name the device in ``X-Edgefleet-Device`` (as the gateway's do), and ``/chat/``
serves the end users' chat page (``shared.webchat``) over this API.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Header, HTTPException, Response
from fastapi.responses import JSONResponse, StreamingResponse

from agent.chat.metrics import RequestSample, ServingMetrics
from agent.chat.page import ChatPageFiles
from agent.chat.shapes import (
    Outcome,
    completion,
    extension,
    plain_outcome,
    sse,
    strategy_outcome,
    usage,
)
from agent.inference.sequences import BusyError, Cancelled
from agent.inference.types import EmptyPrompt, InferenceError, PromptTooLong
from agent.models.serving import ModelHost, NoModel, QueueFull, Serving
from shared.chat import ChatRequest
from shared.strategies import Strategy
from shared.webchat import CHAT_PATH

logger = logging.getLogger(__name__)


def create_chat_app(
    host: ModelHost,
    metrics: ServingMetrics,
    *,
    token: str | None = None,
    default_max_tokens: int = 256,
    device_id: str | None = None,
) -> FastAPI:
    """Build the chat API over ``host``; ``token`` (if set) is required as a bearer token."""
    app = FastAPI(title="edgefleet agent chat API", docs_url=None, redoc_url=None)
    auth = [Depends(_authoriser(token))]
    named = {"X-Edgefleet-Device": device_id} if device_id else {}

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness, which model is serving, and whether chat needs a key (the chat page asks)."""
        serving = host.serving
        model = serving.model_id if serving else None
        return {"status": "ok", "model": model, "key_required": token is not None}

    @app.get("/v1/models", dependencies=auth)
    def list_models() -> dict[str, Any]:
        """The serving model, in OpenAI's list shape."""
        serving = host.serving
        if serving is None:
            return {"object": "list", "data": []}
        model = {"id": serving.model_id, "object": "model", "created": 0, "owned_by": "edgefleet"}
        return {"object": "list", "data": [model]}

    @app.post("/v1/chat/completions", dependencies=auth, response_model=None)
    async def chat_completions(request: ChatRequest, response: Response) -> Any:
        """Answer a chat, optionally refined; 429 with Retry-After when the queue is full."""
        answer = await _chat(host, metrics, request, default_max_tokens)
        target = answer if isinstance(answer, Response) else response
        target.headers.update(named)
        return answer

    app.mount(CHAT_PATH, ChatPageFiles(), name="chat")
    return app


def _authoriser(token: str | None) -> Callable[..., None]:
    def authorise(authorization: Annotated[str | None, Header()] = None) -> None:
        if token is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given, token):
            raise HTTPException(401, "missing or wrong bearer token")

    return authorise


async def _chat(
    host: ModelHost, metrics: ServingMetrics, request: ChatRequest, default_max_tokens: int
) -> Any:
    serving = host.serving
    if serving is None:
        raise HTTPException(503, "no model is loaded yet")
    if request.model not in (None, "", serving.model_id):
        raise HTTPException(404, f"model {request.model!r} is not served here")
    strategy = request.strategy_for(serving.strategy)
    max_tokens = request.max_completion_tokens or request.max_tokens or default_max_tokens
    call = _Call(host, metrics, request, strategy, max_tokens)
    try:
        call.enter()
    except QueueFull:
        metrics.record_rejected()
        return JSONResponse(
            {"error": {"message": "queue full, retry later", "type": "rate_limit_exceeded"}},
            status_code=429,
            headers={"Retry-After": str(_retry_after(metrics, host))},
        )
    if request.stream:
        call.start_stream()
        return StreamingResponse(call.events(), media_type="text/event-stream")
    outcome = await call.run_to_end()
    return completion(call.id, serving.model_id, outcome)


class _Call:
    """One admitted request: runs in a worker thread, releases its queue place at the end."""

    def __init__(
        self,
        host: ModelHost,
        metrics: ServingMetrics,
        request: ChatRequest,
        strategy: Strategy,
        max_tokens: int,
    ) -> None:
        self.host, self.metrics, self.request = host, metrics, request
        self.strategy, self.max_tokens = strategy, max_tokens
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.model_id = host.serving.model_id if host.serving else ""
        self._admission = host.admission()
        self._gone = threading.Event()  # set when a streaming client disconnects

    def enter(self) -> None:
        self._admission.__enter__()

    def _work(self, on_token: Callable[[str], None] | None) -> Outcome:
        try:
            outcome = self.host.run(lambda serving: self._generate(serving, on_token))
        except (EmptyPrompt, PromptTooLong) as exc:
            raise HTTPException(400, str(exc)) from None
        except Cancelled as exc:
            raise HTTPException(499, str(exc)) from None
        except BusyError as exc:  # the model's own queue bound, behind the host's
            self.metrics.record_rejected()
            retry = str(_retry_after(self.metrics, self.host))
            raise HTTPException(429, str(exc), headers={"Retry-After": retry}) from None
        except NoModel as exc:
            raise HTTPException(503, str(exc)) from None
        except InferenceError as exc:
            self.metrics.record_error()
            logger.warning("inference failed: %s", exc)
            raise HTTPException(500, f"inference failed: {exc}") from None
        finally:
            self._admission.__exit__(None, None, None)
        self.metrics.record(
            RequestSample(
                outcome.prompt_tokens,
                outcome.generated_tokens,
                outcome.decode_s,
                outcome.ttft_s,
                outcome.total_s,
                outcome.refined,
            )
        )
        return outcome

    def _generate(self, serving: Serving, on_token: Callable[[str], None] | None) -> Outcome:
        messages = [m.as_dict() for m in self.request.messages]
        if self.strategy.refines:
            stage_sink = (lambda _stage, text: on_token(text)) if on_token else None
            return strategy_outcome(
                serving,
                messages,
                self.strategy,
                self.max_tokens,
                self.request.temperature,
                stage_sink,
            )
        stop = [self.request.stop] if isinstance(self.request.stop, str) else self.request.stop
        generation = serving.runtime.chat(
            messages,
            max_tokens=self.max_tokens,
            temperature=self.request.temperature,
            stop=stop,
            on_token=on_token,
            continue_final=self.request.continue_final_message,
        )
        return plain_outcome(generation)

    async def run_to_end(self) -> Outcome:
        return await anyio.to_thread.run_sync(self._work, None)

    def start_stream(self) -> None:
        """Start generating now, so the queue place is released even if nobody reads."""
        loop = asyncio.get_running_loop()
        self._pieces: asyncio.Queue[str | None] = asyncio.Queue()
        self._streamed = not self.strategy.refines

        def push(piece: str) -> None:
            if self._gone.is_set():  # raising here makes the model free the sequence
                raise Cancelled("the client disconnected")
            if self._streamed:
                loop.call_soon_threadsafe(self._pieces.put_nowait, piece)

        self._task = asyncio.ensure_future(anyio.to_thread.run_sync(self._work, push))
        self._task.add_done_callback(lambda _: self._pieces.put_nowait(None))

    async def events(self) -> AsyncIterator[str]:
        """Server-sent events in OpenAI's chunk shape, ending with ``[DONE]``."""
        pieces, task, streamed = self._pieces, self._task, self._streamed
        try:
            yield sse(self._chunk({"role": "assistant", "content": ""}, None))
            while (piece := await pieces.get()) is not None:
                yield sse(self._chunk({"content": piece}, None))
        finally:
            if not task.done():  # the client went away before the end
                self._gone.set()
                task.add_done_callback(lambda t: t.exception())  # retrieved: nobody waits
        try:
            outcome = task.result()
        except HTTPException as exc:
            yield sse({"error": {"message": exc.detail, "code": exc.status_code}})
            return
        if not streamed:
            yield sse(self._chunk({"content": outcome.text}, None))
        extra = {"edgefleet": extension(outcome), "usage": usage(outcome)}
        yield sse(self._chunk({}, outcome.finish_reason, **extra))
        yield "data: [DONE]\n\n"

    def _chunk(
        self, delta: dict[str, Any], finish_reason: str | None, **extra: Any
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model_id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra,
        }


MAX_RETRY_AFTER_S = 600


def _retry_after(metrics: ServingMetrics, host: ModelHost) -> int:
    """Seconds until the requests waiting ahead have likely been served, plus one more.

    From the measured completion rate (requests answered per second, which
    batching raises); before two answers have been measured, from the mean
    latency of the ones there are.
    """
    ahead = max(0, host.admitted - host.capacity) + 1
    rate = metrics.completion_rate()
    if rate:
        seconds = ahead / rate
    else:
        seconds = (metrics.mean_latency_s() or 1.0) * ahead / max(1, host.capacity)
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(seconds)))
