"""What a request is, for every log line and metric it causes: its id and its GraphQL operation.

Each HTTP request and WebSocket gets a request id: the caller's `X-Request-Id` when it is a
short safe token (so a proxy's id follows the request through), else a new one. It is the
`RequestContext.request_id` resolvers see, goes back as the `X-Request-Id` response header, and
is on every JSON log line written while the request runs (graphql_api/logs.py). Context
variables carry it: asyncio tasks and worker threads started by the request inherit them.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "RequestIdMiddleware",
    "current_operation",
    "current_request_id",
    "error_codes_var",
    "new_request_id",
    "note_error_code",
    "operation_var",
    "request_id_var",
]

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
operation_var: ContextVar[str | None] = ContextVar("operation", default=None)  # e.g. "query AccountBalance"
# The typed error codes an operation returned as data (mutation result unions), noted by
# graphql_api.errors.error_result: a list shared with the tasks the operation starts.
error_codes_var: ContextVar[list[str] | None] = ContextVar("error_codes", default=None)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_HEADER = b"x-request-id"


def new_request_id() -> str:
    # 64 random bits as 16 hex digits: what uuid4().hex[:16] gave, without building a UUID.
    return os.urandom(8).hex()


def current_request_id() -> str:
    """The running request's id (a fresh one outside any request)."""
    return request_id_var.get() or new_request_id()


def current_operation() -> str | None:
    return operation_var.get()


def note_error_code(code: str) -> None:
    codes = error_codes_var.get()
    if codes is not None:
        codes.append(code)


class RequestIdMiddleware:
    """Gives each request its id (see the module docstring) and answers it in `X-Request-Id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        offered = dict(scope.get("headers") or []).get(_HEADER, b"").decode("latin-1")
        request_id = offered if _SAFE_ID.match(offered) else new_request_id()
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER]
                message = {**message, "headers": [*headers, (_HEADER, request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
