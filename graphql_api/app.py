"""The Starlette app: `POST/GET /graphql` (GraphiQL in a browser), WebSocket subscriptions on
the same path (graphql-transport-ws), `GET /healthz`, the auditor's page `GET /explorer`
(graphql_api/explorer.py), plus routes other areas append.

Auth: `Authorization: Bearer <token>` on every request, else HTTP 401. The GraphiQL page itself
(a GET from a browser, no query) is served without a token: it holds no data, and its headers
editor is where the token goes. WebSocket clients send the token as the Authorization header
or as `{"authorization": "Bearer <token>"}` in the connection_init payload.

Adding a route from another area (one-line edit in this file, or at import time of your module
before the app is built):

    EXTRA_ROUTES.append(Route("/statements/{code}.csv", export_csv))

    async def export_csv(request):
        principal = await authenticate(request)      # 401 unless a valid token
        state = app_state(request)                   # state.run(fn, *args) on the pool
        ...
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anyio.to_thread
from cross_web import HTTPException
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from graphql_api import bulk_body
from graphql_api.audit.routes import STATEMENT_ROUTES
from graphql_api.context import AppState, Limits, RequestContext, app_state, bearer_token
from graphql_api.core.subscriptions import listener_of
from graphql_api.direct import DirectExecution
from graphql_api.explorer import EXPLORER_ROUTES
from graphql_api.graphiql import assets_mount, graphiql_page
from graphql_api.health import HEALTH_ROUTES
from graphql_api.json_codec import encode_json
from graphql_api.log_context import RequestIdMiddleware
from graphql_api.metrics import METRICS_ROUTES
from graphql_api.schema import schema
from graphql_api.worker_lifetime import exit_with_parent
from graphql_api.ws_sessions import PerOperationWSHandler
from ledger.errors import DatabaseUnavailable, RateLimited
from ledger.webhooks.settings import WebhookSettings
from ledger.webhooks.worker import DeliveryWorker

__all__ = ["EXTRA_ROUTES", "create_app", "app_from_env", "DATABASE_URL_ENV", "DELIVER_WEBHOOKS_ENV"]

log = logging.getLogger("graphql_api")

# Routes other areas add (e.g. GET /statements/{code}.csv); see the module docstring.
EXTRA_ROUTES: list[BaseRoute] = [*STATEMENT_ROUTES]

DATABASE_URL_ENV = "LEDGER_API_DATABASE_URL"
DELIVER_WEBHOOKS_ENV = "LEDGER_API_DELIVER_WEBHOOKS"  # "1": each worker process runs a delivery worker


def _is_subscription(query: str, operation_name: str | None, *, tokens_max: int) -> bool:
    """Whether the operation a request names is a subscription; a document that does not parse is
    left to the schema, which reports it."""
    try:
        document = parse(query, max_tokens=tokens_max)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [d for d in operations if operation_name is None or (d.name and d.name.value == operation_name)]
    return len(chosen) == 1 and chosen[0].operation is OperationType.SUBSCRIPTION


class LedgerGraphQL(GraphQL[RequestContext, None]):
    """Strawberry's view, with the bearer token checked first and every malformed request (not
    JSON, not UTF-8, nested too deep, not an object, a content type other than JSON) refused
    with a 4xx whose body is a GraphQL error with `extensions.code` BAD_REQUEST."""

    graphql_transport_ws_handler_class = PerOperationWSHandler

    def __init__(self, limits: Limits) -> None:
        # Only graphql-transport-ws: its handler gives every operation its own context and
        # re-checks the token (graphql_api/ws_sessions.py).
        super().__init__(schema, graphql_ide="graphiql", subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,))
        self.limits = limits
        self.direct = DirectExecution(limits)  # prepared documents and persisted queries (graphql_api/direct.py)

    async def execute_single(self, request: Any, request_adapter: Any, sub_response: Any, context: Any,
                             root_value: Any, request_data: Any) -> Any:
        # Over HTTP a subscription would run as a query whose answer is a stream, which is no
        # answer at all: refuse it, and say where subscriptions run. The keyword test keeps the
        # extra parse off every other request.
        query = request_data.query
        if isinstance(query, str) and "subscription" in query and _is_subscription(
                query, request_data.operation_name, tokens_max=self.limits.tokens_max):
            raise HTTPException(400, "subscriptions run over the WebSocket at /graphql (graphql-transport-ws), "
                                     "not over HTTP")
        # Strawberry runs the first operation of a document that holds several when none is named;
        # the GraphQL spec says to refuse, and a client should not get an answer to a question it
        # did not pick. A prepared document keys None only when it holds exactly one operation.
        if request_data.operation_name is None and isinstance(query, str):
            prepared = self.direct.documents.get(query)
            if prepared is not None and None not in prepared.operations:
                raise HTTPException(400, "operationName is required: the document holds more than one operation")
        return await super().execute_single(request, request_adapter, sub_response, context, root_value, request_data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        if not self.should_render_graphql_ide(self.request_adapter_class(request)):
            token = bearer_token(request)
            principal = await app_state(request).principal(token) if token else None
            if principal is None:
                await _error_response(401, "a valid bearer token is required (Authorization: Bearer <token>)",
                                      "UNAUTHENTICATED", {"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
            app_state(request).buckets.take(principal.token_id or 0)  # RateLimited: 429, see create_app
            scope.setdefault("state", {})["principal"] = principal
        try:
            response = None
            if scope["method"] == "POST":
                response = await self.direct.respond(self, request)
            if response is None:
                response = await self.run(request)
        except HTTPException as exc:
            response = _error_response(exc.status_code, exc.reason, "BAD_REQUEST")
        await response(scope, receive, send)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return self.decode_json(data)
        except MalformedJSON as exc:
            raise HTTPException(400, exc.reason) from exc

    def decode_json(self, data: str | bytes) -> object:
        """A JSON object, or MalformedJSON saying why not (a JSONDecodeError, which the WebSocket
        transport treats as a message that is not JSON)."""
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
        except UnicodeDecodeError as exc:
            raise MalformedJSON(f"the body is not UTF-8 (byte {exc.start})") from None
        try:
            value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        except RecursionError:
            raise MalformedJSON(f"JSON nested deeper than {self.limits.json_depth_max} levels") from None
        except ValueError as exc:  # not JSON, NaN, or an integer of thousands of digits
            raise MalformedJSON(f"not JSON: {str(exc)[:200]}") from None
        if not isinstance(value, dict):
            raise MalformedJSON(f"expected a JSON object, got {type(value).__name__}")
        # Nesting past the limit needs more opening brackets than the limit: most bodies have
        # far fewer, and counting them costs less than walking the value.
        if (text.count("{") + text.count("[") > self.limits.json_depth_max
                and _depth_exceeds(value, self.limits.json_depth_max)):
            raise MalformedJSON(f"JSON nested deeper than {self.limits.json_depth_max} levels")
        return value

    async def get_context(self, request: Request | WebSocket, response: Any) -> RequestContext:
        # A WebSocket's token is looked up in on_ws_connect, where a database outage closes the
        # socket with 1013 (graphql_api/ws_sessions.py).
        principal = request.scope.get("state", {}).get("principal")
        return RequestContext(request=request, response=response, state=app_state(request), principal=principal,
                              token=bearer_token(request))

    async def on_ws_connect(self, context: RequestContext) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        header = str(params.get("authorization") or params.get("Authorization") or "")
        scheme, _, token = header.partition(" ")
        in_payload = token.strip() if scheme.lower() == "bearer" and token.strip() else None
        for candidate in (context.token, in_payload):  # the Authorization header's, then the payload's
            if candidate is not None and context.principal is None:
                context.principal = await context.state.principal(candidate)
                context.token = candidate
        if context.principal is None:
            raise ConnectionRejectionError()
        return await super().on_ws_connect(context)

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        """An HTTP response, encoded with orjson (graphql_api/json_codec.py)."""
        response = Response(encode_json(response_data), status_code=sub_response.status_code or 200,
                            media_type="application/json")
        response.headers.raw.extend(sub_response.headers.raw)
        response.background = sub_response.background
        return response

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our page loads GraphiQL from this app, never from a CDN (graphql_api/graphiql.py).
        return graphiql_page()


class MalformedJSON(json.JSONDecodeError):
    """A body or message that is not the JSON object a GraphQL request is; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "", 0)
        self.reason = reason


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: what the database's JSON could not hold
        raise ValueError(f"{text[:40]} is out of range for a JSON number")
    return value


def _depth_exceeds(value: object, depth_max: int) -> bool:
    """Whether `value` nests deeper than `depth_max` objects and arrays (iteratively: no stack)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            if depth > depth_max:
                return True
            pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _error_response(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]},
                        status_code=status, headers=headers)


async def rate_limited(request: Request, exc: Exception) -> Response:
    """A token past its rate limit (graphql_api/rate_limit.py): HTTP 429 with `Retry-After`."""
    assert isinstance(exc, RateLimited)
    return JSONResponse({"errors": [{"message": exc.message, "extensions": {
                            "code": exc.code, "retryable": True, "retryAfterS": exc.retry_after_s}}]},
                        status_code=429, headers={"Retry-After": str(exc.retry_after_s)})


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """Any route that could not reach the database: a typed, retryable JSON 503 (never a plain 500)."""
    log.warning("database unavailable: %s", exc)
    return JSONResponse({"errors": [{"message": str(exc), "extensions": {
                            "code": DatabaseUnavailable.code, "retryable": True}}]},
                        status_code=503, headers={"Retry-After": "1"})


class BodyLimit:
    """Refuses request bodies over `limit` bytes with 413, whether declared or streamed; a
    postTransactions call may declare up to `bulk_limit` (graphql_api/bulk_body.py)."""

    def __init__(self, app: ASGIApp, limit: int, bulk_limit: int = 0, tokens_max: int = 0) -> None:
        self.app = app
        self.limit = limit
        self.bulk_limit = bulk_limit
        self.tokens_max = tokens_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and self.limit < int(declared) <= self.bulk_limit \
                and await bulk_body.may_send_bulk(scope):
            body = await bulk_body.read_body(receive, self.bulk_limit)
            if body is not None and bulk_body.admits_bulk(body, tokens_max=self.tokens_max):
                await self.app(scope, bulk_body.replay(body, receive), send)
            else:
                await self._refuse(scope, receive, send)
            return
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _error_response(413, f"request body larger than {self.limit} bytes (a mutation calling only "
                                   f"postTransactions may send up to {self.bulk_limit})", "BODY_TOO_LARGE")(
            scope, receive, send)


class _TooLarge(Exception):
    pass


async def healthz(request: Request) -> Response:
    """Up and able to reach the database; no token needed (for load balancers)."""
    def ping(conn: Any) -> bool:
        return conn.execute("select 1").fetchone() is not None
    try:
        await app_state(request).run(ping, retry_lost_connection=True)
    except Exception:
        log.exception("healthz: database unreachable")
        return JSONResponse({"status": "unavailable", "code": DatabaseUnavailable.code, "retryable": True},
                            status_code=503)
    return JSONResponse({"status": "ok"})


def create_app(database_url: str, *, limits: Limits | None = None,
               announce: Callable[[str], None] | None = None,
               connection_kwargs: Mapping[str, Any] | None = None,
               deliver_webhooks: bool = False) -> Starlette:
    """The app for a database; the pool opens at startup and closes at shutdown (`announce`
    hears about both, e.g. `print` for the serve command). `connection_kwargs` are extra
    arguments for the pool's connections (see AppState.open). With `deliver_webhooks` the app
    runs a webhook delivery worker from startup to shutdown (ledger/webhooks/worker.py: one
    process of all that run one delivers at a time)."""
    limits = limits or Limits()
    graphql = LedgerGraphQL(limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = AppState.open(database_url, limits, connection_kwargs)
        app.state.ledger = state
        worker = DeliveryWorker(database_url, WebhookSettings.from_env()).start() if deliver_webhooks else None
        try:
            yield
        finally:
            if worker is not None:  # it may be in a request: wait for it off the event loop
                await anyio.to_thread.run_sync(worker.stop)
            await listener_of(state).close()
            state.close()
            if announce is not None:
                announce("stopped: in-flight requests finished, database pool closed")

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        *EXTRA_ROUTES,
    ]
    routes += [assets_mount(), *EXPLORER_ROUTES, *HEALTH_ROUTES, *METRICS_ROUTES]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={DatabaseUnavailable: database_unavailable,
                                        RateLimited: rate_limited})
    app.state.direct = graphql.direct  # its prepared documents and persisted queries, for tests
    app.add_middleware(BodyLimit, limit=limits.body_bytes_max, bulk_limit=limits.batch_body_bytes_max,
                       tokens_max=limits.tokens_max)
    app.add_middleware(RequestIdMiddleware)  # outermost: even a refused request has an id
    return app


def app_from_env() -> ASGIApp:
    """Factory for uvicorn workers (`--factory`): the database URL comes from the environment.
    It runs in the worker, which from here on ends when its parent does."""
    from graphql_api.settings import configured_limits  # the parent checked them at start-up

    exit_with_parent()
    return create_app(os.environ[DATABASE_URL_ENV], limits=configured_limits(),
                      deliver_webhooks=os.environ.get(DELIVER_WEBHOOKS_ENV) == "1")
