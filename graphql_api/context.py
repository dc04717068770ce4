"""The request context: the database pool, who is calling, and helpers resolvers use.

Resolvers are async; the core is sync psycopg. `run_db(info, fn, *args)` runs `fn(conn, *args)`
on a pooled autocommit connection in a worker thread, so the event loop never waits on the
database. Access rules are applied here too: `require_role` for what a role may do, `can_see` for
which accounts a holder may see (the rule is the core's `Principal.may_see`; any other account
behaves as if it did not exist).

For routes outside GraphQL (e.g. a CSV export), `authenticate(request)` gives the principal or
raises a 401, and `app_state(request)` the pool: see graphql_api/app.py.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from graphql_api.errors import AccessDenied, StatementTimeout
from graphql_api.log_context import current_request_id
from graphql_api.rate_limit import TokenBuckets
from graphql_api.read_gather import read_gatherer
from ledger.accounts import Account
from ledger.errors import DatabaseUnavailable, ReadOnlyDatabase, ValidationError, translate
from ledger.tokens import Principal, Role, principal_for

__all__ = [
    "Limits",
    "AppState",
    "RequestContext",
    "Principal",
    "Role",
    "run_db",
    "require_role",
    "can_see",
    "charge_rows",
    "authenticate",
    "app_state",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """Every limit the API enforces, in one place (a hostile query gets an error, not a busy server)."""

    pool_size_min: int = 2
    pool_size_max: int = 8
    pool_timeout_s: int = 10
    statement_timeout_ms: int = 5_000
    # Shorter than the statement timeout: a request waiting on a row another transaction holds
    # gives up first, with its own retryable LOCK_TIMEOUT, instead of running into the statement
    # timeout (and, gathered, holding up the unrelated requests of its batch for as long).
    lock_timeout_ms: int = 1_000
    query_depth_max: int = 12
    aliases_max: int = 30
    tokens_max: int = 2_000
    fields_max: int = 500                 # fields written in one document (graphql_api/query_cost.py)
    selections_per_level_max: int = 200   # at one level, fragments merged in
    duplicate_selections_max: int = 10    # selections sharing one response name at one level
    json_depth_max: int = 32              # nesting of the request's JSON (variables, metadata)
    page_size_max: int = 500
    page_size_default: int = 100
    rows_per_request_max: int = 5_000   # sum of `first` over every connection a request asks for
    body_bytes_max: int = 100_000
    # postTransactions: transactions in one call, and the larger body only such a call may send
    # (1,000 two-leg transfers weigh about 250 kB; graphql_api/body_limit.py).
    batch_transactions_max: int = 1_000
    batch_body_bytes_max: int = 2_000_000
    token_cache_ttl_s: int = 5      # how long a revoked token may still work in one process
    token_cache_entries_max: int = 10_000
    # Per token and per server process (each worker of `serve --workers N` counts on its own):
    # a token bucket refilled at `requests_per_s_per_token`, holding at most `request_burst_per_token`.
    requests_per_s_per_token: int = 50
    request_burst_per_token: int = 100


# A server shutting down or restarting (57P01-57P03), or the connection itself failing (class 08).
_SERVER_GONE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def connection_lost(exc: psycopg.OperationalError) -> bool:
    """Whether the error means the connection (not the statement) failed: psycopg's own
    errors without an SQLSTATE, class 08, and the server's shutdown codes."""
    sqlstate = exc.sqlstate
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _SERVER_GONE_SQLSTATES


def check_idle_connection(conn: psycopg.Connection[Any]) -> None:
    """The pool's check at checkout, without a round trip when the connection looks healthy: an
    idle connection has nothing to read, so a readable socket means the server spoke first (as
    it does when it terminates the session) and the connection gets the full check, a
    statement, which raises when it is dead."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


class _ConnectionLost(Exception):
    """Internal: the call's connection broke; `run` retries a read once or answers unavailable."""

    def unavailable(self) -> DatabaseUnavailable:
        return DatabaseUnavailable("the database connection was lost (the server restarted or is down); "
                                   "try again: a mutation's idempotency key makes the retry safe")


@dataclass
class AppState:
    """One per app: the pool and what is shared between requests."""

    database_url: str
    limits: Limits
    pool: ConnectionPool[Any]
    limiter: anyio.CapacityLimiter
    token_cache: dict[str, tuple[Principal, float]] = field(default_factory=dict)
    buckets: TokenBuckets = field(default_factory=TokenBuckets)
    extras: dict[str, Any] = field(default_factory=dict)  # for areas: gatherers, listeners...

    @classmethod
    def open(cls, database_url: str, limits: Limits, connection_kwargs: Mapping[str, Any] | None = None) -> AppState:
        """`connection_kwargs` go to psycopg.connect for every pooled connection (a test counting
        statements passes a `cursor_factory`); autocommit and the statement timeout always apply."""
        pool: ConnectionPool[Any] = ConnectionPool(
            database_url,
            min_size=limits.pool_size_min,
            max_size=limits.pool_size_max,
            timeout=limits.pool_timeout_s,
            kwargs={
                **(connection_kwargs or {}),
                "autocommit": True,
                # Set at connect time, so no statement of the API can run past it.
                "options": f"-c statement_timeout={limits.statement_timeout_ms} "
                           f"-c lock_timeout={limits.lock_timeout_ms}",
            },
            open=False,
            name="graphql_api",
            # A connection the server dropped (a restart, a failover) is found and replaced at
            # checkout, before a request gets it.
            check=check_idle_connection,
        )
        pool.open()
        buckets = TokenBuckets(limits.requests_per_s_per_token, limits.request_burst_per_token)
        return cls(database_url, limits, pool, anyio.CapacityLimiter(limits.pool_size_max), buckets=buckets)

    def close(self) -> None:
        self.pool.close()

    async def run(self, fn: Callable[..., T], *args: Any, retry_lost_connection: bool = False, **kwargs: Any) -> T:
        """`fn(conn, *args, **kwargs)` on a pooled connection in a worker thread. A read may pass
        `retry_lost_connection`: it is run once more on a fresh connection when its connection
        broke under it; a write never is (it answers DatabaseUnavailable, and its idempotency
        key makes the client's retry safe)."""
        call = partial(self._call, fn, args, kwargs)
        try:
            return await anyio.to_thread.run_sync(call, limiter=self.limiter)
        except _ConnectionLost as lost:
            if retry_lost_connection:
                try:
                    return await anyio.to_thread.run_sync(call, limiter=self.limiter)
                except _ConnectionLost as again:
                    raise again.unavailable() from again.__cause__
            raise lost.unavailable() from lost.__cause__

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> T:
        try:
            with self.pool.connection() as conn:
                return fn(conn, *args, **kwargs)
        except PoolTimeout as exc:
            raise DatabaseUnavailable(
                f"no database connection within {self.limits.pool_timeout_s} s; try again shortly") from exc
        except pg_errors.QueryCanceled as exc:
            raise StatementTimeout(
                f"a database statement took longer than {self.limits.statement_timeout_ms} ms and was "
                "cancelled; ask for less (a smaller page, a shorter period)",
                statement_timeout_ms=self.limits.statement_timeout_ms,
            ) from exc
        except psycopg.Error as exc:
            if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
                raise ReadOnlyDatabase("the database is read-only (a standby, or default_transaction_read_only "
                                       "is on): it answers queries, not mutations") from exc
            if isinstance(exc, psycopg.OperationalError) and connection_lost(exc):
                raise _ConnectionLost() from exc  # `run` retries a read once, else DatabaseUnavailable
            # A lock wait cut short, or a rule only the database enforces (a date out of range):
            # the caller gets it typed.
            error = translate(exc)
            if error is None:
                raise
            raise error from exc

    async def principal(self, token: str) -> Principal | None:
        now = time.monotonic()
        cached = self.token_cache.get(token)
        if cached is not None and cached[1] > now:
            return cached[0]
        principal = await self.run(principal_for, token, retry_lost_connection=True)
        if principal is not None:
            if len(self.token_cache) >= self.limits.token_cache_entries_max:
                self.token_cache.clear()
            self.token_cache[token] = (principal, now + self.limits.token_cache_ttl_s)
        return principal


@dataclass
class RequestContext:
    request: Any
    response: Any
    state: AppState
    principal: Principal | None
    request_id: str = field(default_factory=current_request_id)  # the X-Request-Id (log_context.py)
    rows_charged: int = 0
    connection_params: dict[str, Any] | None = None
    _loaders: dict[Hashable, DataLoader[Any, Any]] = field(default_factory=dict)
    token: str | None = None  # the bearer token, re-checked for each operation on a WebSocket
    # Set per operation (graphql_api/operation_kind.py): a query or subscription only reads, so
    # a call whose connection broke is run once more; a mutation's never is.
    reads_only: bool = False

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await self.state.run(fn, *args, retry_lost_connection=self.reads_only, **kwargs)
        except DatabaseUnavailable:
            self._unavailable()
            raise

    async def read_many(self, batch: Callable[[psycopg.Connection[Any], list[Any]], Mapping[Any, Any]],
                        keys: list[Any]) -> Mapping[Any, Any]:
        """`batch(conn, keys)`, in a trip shared with other requests when the loader gathers
        reads (graphql_api/read_gather.py), else on its own."""
        gatherer = read_gatherer(self.state, batch)
        if gatherer is None:
            return await self.run(batch, keys)
        try:
            return await gatherer.load(keys, reads_only=self.reads_only)
        except DatabaseUnavailable:
            self._unavailable()
            raise

    def _unavailable(self) -> None:
        if hasattr(self.response, "status_code"):
            self.response.status_code = 503  # the answer is still JSON, with the typed error

    def for_operation(self) -> RequestContext:
        """A fresh context for one operation on a WebSocket: its own DataLoader cache (no stale
        balances from an earlier operation) and its own row budget, the connection's caller."""
        return RequestContext(request=self.request, response=self.response, state=self.state,
                              principal=self.principal, connection_params=self.connection_params,
                              token=self.token)

    async def still_authorised(self) -> bool:
        """Whether the token still stands for a principal (within the token cache's TTL)."""
        return self.token is None or await self.state.principal(self.token) is not None

    def loader(self, batch: Callable[[psycopg.Connection[Any], list[Any]], Mapping[Any, Any]]) -> DataLoader[Any, Any]:
        """The request's DataLoader over a core function `batch(conn, keys) -> {key: value}`."""
        found = self._loaders.get(batch)
        if found is None:
            async def load(keys: list[Any]) -> list[Any]:
                values = await self.read_many(batch, list(keys))
                return [values.get(key) for key in keys]
            found = self._loaders[batch] = DataLoader(load_fn=load)
        return found

    async def load(self, batch: Callable[[psycopg.Connection[Any], list[Any]], Mapping[Any, Any]], key: Any) -> Any:
        return await self.loader(batch).load(key)


def context_of(info: Info[Any, Any]) -> RequestContext:
    return info.context  # type: ignore[no-any-return]


async def run_db(info: Info[Any, Any], fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(conn, *args, **kwargs)` on a pooled connection in a worker thread."""
    return await context_of(info).run(fn, *args, **kwargs)


def principal_of(info: Info[Any, Any]) -> Principal:
    principal = context_of(info).principal
    if principal is None:  # the app refuses unauthenticated requests before any resolver runs
        raise AccessDenied("a bearer token is required")
    return principal


def require_role(info: Info[Any, Any], *roles: Role) -> Principal:
    """The principal, if its role is one of `roles`; else AccessDenied (typed `Forbidden`)."""
    principal = principal_of(info)
    if principal.role not in roles:
        allowed = ", ".join(role.value for role in roles)
        raise AccessDenied(f"role {principal.role.value} may not do this (needs {allowed})",
                           role=principal.role.value)
    return principal


def can_see(info: Info[Any, Any], account: Account | None) -> bool:
    """Whether the caller may see the account (the rule is `Principal.may_see`); None is not seen."""
    return account is not None and principal_of(info).may_see(account)


def charge_rows(info: Info[Any, Any], rows: int) -> None:
    """Count a page's size against the request's budget, so nested pages cannot multiply."""
    context = context_of(info)
    context.rows_charged += rows
    budget = context.state.limits.rows_per_request_max
    if context.rows_charged > budget:
        raise ValidationError(
            f"this request asks for more than {budget} rows in all; ask for smaller or fewer pages",
            field="first",
        )


def page_size(info: Info[Any, Any], first: int | None) -> int:
    """`first`, defaulted and checked against the page size limit, and charged to the request."""
    limits = context_of(info).state.limits
    size = limits.page_size_default if first is None else first
    if not 0 <= size <= limits.page_size_max:
        raise ValidationError(f"first must be between 0 and {limits.page_size_max}, got {size}", field="first")
    charge_rows(info, size)
    return size


def app_state(connection: HTTPConnection) -> AppState:
    return connection.app.state.ledger  # type: ignore[no-any-return]


def bearer_token(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authenticate(connection: HTTPConnection) -> Principal:
    """The caller's principal from `Authorization: Bearer <token>`, else HTTP 401; a token past
    its rate limit raises RateLimited (HTTP 429, see graphql_api/app.py)."""
    token = bearer_token(connection)
    principal = await app_state(connection).principal(token) if token else None
    if principal is None:
        raise HTTPException(401, "a valid bearer token is required (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})
    app_state(connection).buckets.take(principal.token_id or 0)
    return principal

