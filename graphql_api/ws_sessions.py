"""WebSocket sessions (graphql-transport-ws) with per-operation auth and per-operation context.

strawberry builds one context per connection. Here every operation gets a fresh one
(`RequestContext.for_operation`): its own DataLoader cache, so a second query on the socket sees
balances as they are now, and its own row budget, so many small queries never exhaust it.

Each operation counts against the token's rate limit (an `error` message RATE_LIMITED when
past it). The token is checked again for every operation, and every `token_cache_ttl_s` while the socket
is open (a running subscription included); a token revoked or expired since the connection was
made closes the socket with code 4403. A subscription also re-checks it before each event.

A `subscribe` message is checked before it runs, as an HTTP body is (graphql_api/app.py): an id
that is not a short string, or a payload whose query, variables, operationName or extensions have
the wrong JSON type, closes the socket with 4400 and a reason naming the field (the protocol's
answer to a malformed message). A document that does not parse gets an `error` message with
GRAPHQL_PARSE_FAILED, as it would over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import CompleteMessage, SubscribeMessage
from strawberry.types.execution import ExecutionResult
from strawberry.utils.aio import aclosing

from graphql_api.context import RequestContext
from graphql_api.extensions import shaped_error
from ledger.errors import DatabaseUnavailable, LedgerError, RateLimited
from ledger.text import unstorable_character

__all__ = ["PerOperationWSHandler", "TokenRevoked", "close_code_revoked", "subscribe_problem"]

close_code_revoked = 4403
close_code_try_later = 1013
close_code_malformed = 4400
# An id is only echoed back; a client's are counters or UUIDs.
operation_id_length_max = 128


class TokenRevoked(LedgerError):
    """The token behind an open WebSocket was revoked or expired: the socket closes (4403)."""

    code = "TOKEN_REVOKED"


class PerOperationWSHandler(BaseGraphQLTransportWSHandler[RequestContext, None]):
    _watcher: asyncio.Task[None] | None = None

    async def handle(self) -> None:
        self._watcher = asyncio.create_task(self._watch_token())
        try:
            await super().handle()
        finally:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher

    async def handle_connection_init(self, message: Any) -> None:
        """A token that cannot be checked because the database is away: close with 1013 (try
        again later), not a refusal."""
        try:
            await super().handle_connection_init(message)
        except DatabaseUnavailable:
            with contextlib.suppress(Exception):
                await self.websocket.close(code=close_code_try_later, reason="database unavailable; try again")

    async def _watch_token(self) -> None:
        interval_s = max(1, self.context.state.limits.token_cache_ttl_s)
        while True:
            await asyncio.sleep(interval_s)
            try:
                authorised = not self.connection_acknowledged or await self.context.still_authorised()
            except DatabaseUnavailable:
                continue  # cannot tell now; the next check (or the next operation's) will
            if not authorised:
                await self.close_revoked()
                return

    async def close_revoked(self) -> None:
        # Closed first: cleaning up may cancel the very task running this.
        with contextlib.suppress(Exception):
            await self.websocket.close(code=close_code_revoked, reason="token revoked or expired")
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """strawberry's, after the message's shape is checked: strawberry reads the payload's
        fields as they come, and a payload that is not an object, or a query that is not a
        string, would fail inside the operation's task where nothing answers the client."""
        problem = subscribe_problem(dict(message)) if self.connection_acknowledged else None
        if problem is not None:
            await self.websocket.close(code=close_code_malformed, reason=problem)
            return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[RequestContext, None]) -> None:
        """As strawberry's, with a fresh context per operation and the token checked first."""
        try:
            if not await self.context.still_authorised():
                self.operations.pop(operation.id, None)
                await self.close_revoked()
                return
            principal = self.context.principal
            self.context.state.buckets.take((principal.token_id if principal else None) or 0)
        except (RateLimited, DatabaseUnavailable) as exc:
            extensions: dict[str, object] = {"code": exc.code, "retryable": True}
            if isinstance(exc, RateLimited):
                extensions["retryAfterS"] = exc.retry_after_s
            await operation.send_operation_message({"id": operation.id, "type": "error", "payload": [
                {"message": exc.message, "extensions": extensions}]})
            return
        context = self.context.for_operation()
        try:
            result_source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                root_value=self.root_value,
                operation_name=operation.operation_name,
            )
            async with aclosing(result_source):
                await self._send_checked(operation, result_source)
            await operation.send_operation_message(CompleteMessage(id=operation.id, type="complete"))
        except (_OperationStreamClosed, _Revoked):
            return
        except GraphQLError as error:
            # The parser cache parses outside strawberry's own handling of a syntax error, so
            # the error leaves the stream raised: answer it as an HTTP request would be.
            shaped = shaped_error(error, context.request_id)
            await operation.send_operation_message({"id": operation.id, "type": "error",
                                                    "payload": [shaped.formatted]})
        except Exception as error:
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def _send_checked(self, operation: Operation[RequestContext, None], result_source: Any) -> None:
        """strawberry's result loop; a result that reports a revoked token closes the socket instead."""
        async def checked() -> Any:
            async for result in result_source:
                if isinstance(result, ExecutionResult) and _revoked(result):
                    await self.close_revoked()
                    raise _Revoked()
                yield result
        await self._send_result_stream(operation, checked())


class _Revoked(Exception):
    pass


def subscribe_problem(message: Mapping[str, Any]) -> str | None:
    """Why a `subscribe` message is not one this server can run, or None. Short: a WebSocket close
    reason holds at most 123 bytes."""
    operation_id = message.get("id")
    if not isinstance(operation_id, str) or not 0 < len(operation_id) <= operation_id_length_max:
        return f"subscribe: id must be a string of 1 to {operation_id_length_max} characters"
    # The id is echoed in every answer and in log lines: no control character, no lone surrogate.
    if not operation_id.isprintable() or unstorable_character(operation_id) is not None:
        return "subscribe: id must be printable text (no control character or lone surrogate)"
    payload: object = message.get("payload")
    if not isinstance(payload, dict):
        return "subscribe: payload must be an object"
    if not isinstance(payload.get("query"), str):
        return "subscribe: payload.query must be a string (the document's text)"
    for name, kind, described in (("variables", dict, "an object"), ("operationName", str, "a string"),
                                  ("extensions", dict, "an object")):
        if payload.get(name) is not None and not isinstance(payload[name], kind):
            return f"subscribe: payload.{name} must be {described} or null"
    return None


def _revoked(result: ExecutionResult) -> bool:
    # Shaped by graphql_api.extensions before it gets here: the code is what remains.
    return any(isinstance(error.original_error, TokenRevoked) or (error.extensions or {}).get("code") == TokenRevoked.code
               for error in result.errors or ())
