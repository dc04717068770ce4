"""The async connection pool: database calls on the event loop, without a thread hop.

`run_db(info, fn, *args)` (graphql_api/context.py) runs a sync core function in a worker thread;
under load that hop (a queue put, a thread wake-up, the GIL handed back and forth, a future
completed from the thread) cost more CPU than the statements of a balance query. Resolvers on the
hot path may instead call `run_db_async(info, fn, *args)` with an `async def fn(conn, *args)` on
a `psycopg.AsyncConnection` from this pool. Both pools give the same guarantees: autocommit,
the API's statement and lock timeouts, a connection the server dropped found and replaced at
checkout, errors typed the same way (graphql_api/db_errors.py), a read retried once on a lost
connection and a write never.

The pool opens with the app (or on first use) and has its own connections, `pool_size_max` at
most, beside the thread pool's.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from graphql_api.db_errors import ConnectionLost, database_error

__all__ = ["AsyncDatabase", "check_idle_async_connection"]

T = TypeVar("T")


async def check_idle_async_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """The checkout check, without a round trip when the connection looks healthy (as
    graphql_api/context.py's check_idle_connection): a readable idle socket means the server
    spoke first, as it does when it ends the session, and the connection gets the full check."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        await AsyncConnectionPool.check_connection(conn)


class AsyncDatabase:
    def __init__(self, database_url: str, *, size_min: int, size_max: int, timeout_s: float,
                 statement_timeout_ms: int, lock_timeout_ms: int,
                 connection_kwargs: Mapping[str, Any] | None = None) -> None:
        self._timeout_s = timeout_s
        self._statement_timeout_ms = statement_timeout_ms
        self._pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            database_url, min_size=size_min, max_size=size_max, timeout=timeout_s,
            kwargs={**(connection_kwargs or {}), "autocommit": True,
                    "options": f"-c statement_timeout={statement_timeout_ms} -c lock_timeout={lock_timeout_ms}"},
            open=False, name="graphql_api_async", check=check_idle_async_connection)
        self._opened = False
        self._opening: asyncio.Lock | None = None

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        return self._pool

    async def open(self) -> None:
        if self._opened:
            return
        self._opening = self._opening or asyncio.Lock()
        async with self._opening:
            if not self._opened:
                await self._pool.open(wait=False)
                self._opened = True

    async def close(self) -> None:
        if self._opened:
            self._opened = False
            await self._pool.close()

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any, retry_lost_connection: bool = False,
                  **kwargs: Any) -> T:
        """`await fn(conn, *args, **kwargs)` on a pooled connection; a lost connection is retried
        once when `retry_lost_connection` (reads), else answered DatabaseUnavailable."""
        try:
            return await self._call(fn, args, kwargs)
        except ConnectionLost as lost:
            if retry_lost_connection:
                try:
                    return await self._call(fn, args, kwargs)
                except ConnectionLost as again:
                    raise again.unavailable() from again.__cause__
            raise lost.unavailable() from lost.__cause__

    async def _call(self, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> T:
        await self.open()
        try:
            async with self._pool.connection() as conn:
                return await fn(conn, *args, **kwargs)
        except (PoolTimeout, psycopg.Error) as exc:
            error = database_error(exc, pool_timeout_s=self._timeout_s, statement_timeout_ms=self._statement_timeout_ms)
            if error is None:
                raise
            raise error from exc
