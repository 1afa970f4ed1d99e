"""The gateway's OpenAI-compatible routes for end users: ``/v1/models``, ``/v1/chat/completions``.

Any token may chat (a ``client`` key may do nothing else); each key is rate limited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from controller.api.deps import StateDep, require_role
from controller.api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from controller.core.security import Principal
from controller.gateway.ratelimit import retry_after_header
from controller.gateway.relay import Relay
from controller.gateway.routing import Placement
from controller.gateway.service import AUTO_MODEL, Gateway, Refusal
from controller.models import Role
from shared.chat import ChatRequest

router = APIRouter(prefix="/v1", tags=["gateway"], responses=ERROR_RESPONSES)
ClientDep = Annotated[Principal, Depends(require_role(Role.CLIENT))]


def get_gateway(state: StateDep) -> Gateway:
    """The app's gateway."""
    assert state.gateway is not None, "create_app wires the gateway"
    return state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


@router.get("/models")
async def list_models(_: ClientDep, gateway: GatewayDep) -> dict[str, Any]:
    """``auto`` and every model an online device serves, in OpenAI's list shape."""
    ids = [AUTO_MODEL, *await gateway.models()]
    models = [{"id": i, "object": "model", "created": 0, "owned_by": "edgefleet"} for i in ids]
    return {"object": "list", "data": models}


@router.post(
    "/chat/completions",
    response_model=None,
    responses={
        429: {"model": ErrorBody, "description": "the key's rate, or every device, is used up"},
        502: {"model": ErrorBody, "description": "two devices failed before a first token"},
        503: {"model": ErrorBody, "description": "no online device serves the model"},
    },
)
async def chat_completions(
    request: ChatRequest, caller: ClientDep, gateway: GatewayDep
) -> JSONResponse | StreamingResponse:
    """Answer on the conversation's last device, else the least loaded; 429 if all busy.

    Devices that serve ``model`` (``auto``: any), that is.
    """
    try:
        gateway.admit(caller.token_id)
        if request.stream:
            relay, placement = await gateway.stream(request, caller.token_id)
            return RelayResponse(relay, headers=_served_by(placement))
        answer, placement = await gateway.complete(request, caller.token_id)
        return JSONResponse(answer, headers=_served_by(placement))
    except Refusal as refusal:
        wait = refusal.retry_after_s
        headers = {} if wait is None else {"Retry-After": retry_after_header(wait)}
        raise ApiError(refusal.status, refusal.code, refusal.detail, headers=headers) from None


class RelayResponse(StreamingResponse):
    """Server-sent events from a device; the relay is finished whatever ends the response."""

    def __init__(self, relay: Relay, headers: dict[str, str]) -> None:
        super().__init__(relay.lines(), media_type="text/event-stream", headers=headers)
        self.relay = relay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the stream; then release the device even if the client left before it began."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.relay.finish()


def _served_by(placement: Placement) -> dict[str, str]:
    route = placement.route
    escalated = placement.escalated_from
    return (
        {
            "X-Edgefleet-Device": route.device_id,
            "X-Edgefleet-Model": route.model_id,
            "X-Edgefleet-Routing": placement.routing,
        }
        | ({"X-Edgefleet-Escalated-From": escalated} if escalated else {})
        | ({"X-Edgefleet-Auto": placement.auto.kind.category} if placement.auto else {})
    )
