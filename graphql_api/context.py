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

import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from graphql_api.errors import AccessDenied, StatementTimeout
from graphql_api.log_context import current_request_id
from ledger.accounts import Account
from ledger.errors import ValidationError, translate
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
    token_cache_ttl_s: int = 5      # how long a revoked token may still work in one process
    token_cache_entries_max: int = 10_000


@dataclass
class AppState:
    """One per app: the pool and what is shared between requests."""

    database_url: str
    limits: Limits
    pool: ConnectionPool[Any]
    limiter: anyio.CapacityLimiter
    token_cache: dict[str, tuple[Principal, float]] = field(default_factory=dict)
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
        )
        pool.open()
        return cls(database_url, limits, pool, anyio.CapacityLimiter(limits.pool_size_max))

    def close(self) -> None:
        self.pool.close()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(partial(self._call, fn, args, kwargs), limiter=self.limiter)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> T:
        try:
            with self.pool.connection() as conn:
                return fn(conn, *args, **kwargs)
        except pg_errors.QueryCanceled as exc:
            raise StatementTimeout(
                f"a database statement took longer than {self.limits.statement_timeout_ms} ms and was "
                "cancelled; ask for less (a smaller page, a shorter period)",
                statement_timeout_ms=self.limits.statement_timeout_ms,
            ) from exc
        except psycopg.Error as exc:
            # A lock wait cut short or a lost connection (retryable, never "ask for less"), or a
            # rule only the database enforces (a date out of range): the caller gets it typed.
            error = translate(exc)
            if error is None:
                raise
            raise error from exc

    async def principal(self, token: str) -> Principal | None:
        now = time.monotonic()
        cached = self.token_cache.get(token)
        if cached is not None and cached[1] > now:
            return cached[0]
        principal = await self.run(principal_for, token)
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

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.state.run(fn, *args, **kwargs)

    def loader(self, batch: Callable[[psycopg.Connection[Any], list[Any]], Mapping[Any, Any]]) -> DataLoader[Any, Any]:
        """The request's DataLoader over a core function `batch(conn, keys) -> {key: value}`."""
        found = self._loaders.get(batch)
        if found is None:
            async def load(keys: list[Any]) -> list[Any]:
                values = await self.run(batch, list(keys))
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
    """The caller's principal from `Authorization: Bearer <token>`, else HTTP 401."""
    token = bearer_token(connection)
    principal = await app_state(connection).principal(token) if token else None
    if principal is None:
        raise HTTPException(401, "a valid bearer token is required (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal

