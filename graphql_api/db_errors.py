"""What a failed database call means to a client, for both pools (graphql_api/context.py's thread
pool and graphql_api/async_pool.py): a typed, mostly retryable error, never a bare driver error.

- no connection within the pool timeout: DATABASE_UNAVAILABLE;
- a statement past the statement timeout: STATEMENT_TIMEOUT;
- a write against a read-only database: READ_ONLY_DATABASE;
- the connection itself lost (a restart, a failover): `ConnectionLost`, which the caller turns
  into one retry for a read or DATABASE_UNAVAILABLE for a write;
- anything `ledger.errors.translate` knows (a lock wait cut short, a value the database refused).
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from graphql_api.errors import StatementTimeout
from ledger.errors import DatabaseUnavailable, ReadOnlyDatabase, translate

__all__ = ["ConnectionLost", "connection_lost", "database_error"]

# A server shutting down or restarting (57P01-57P03), or the connection itself failing (class 08).
_SERVER_GONE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def connection_lost(exc: psycopg.OperationalError) -> bool:
    """Whether the error means the connection (not the statement) failed: psycopg's own
    errors without an SQLSTATE, class 08, and the server's shutdown codes."""
    sqlstate = exc.sqlstate
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _SERVER_GONE_SQLSTATES


class ConnectionLost(Exception):
    """Internal: the call's connection broke; the caller retries a read once or answers unavailable."""

    def unavailable(self) -> DatabaseUnavailable:
        return DatabaseUnavailable("the database connection was lost (the server restarted or is down); "
                                   "try again: a mutation's idempotency key makes the retry safe")


def database_error(exc: Exception, *, pool_timeout_s: float, statement_timeout_ms: int) -> Exception | None:
    """The exception to raise instead of `exc`, or None to let `exc` through unchanged."""
    if isinstance(exc, PoolTimeout):
        return DatabaseUnavailable(f"no database connection within {pool_timeout_s} s; try again shortly")
    if isinstance(exc, pg_errors.QueryCanceled):
        return StatementTimeout(
            f"a database statement took longer than {statement_timeout_ms} ms and was "
            "cancelled; ask for less (a smaller page, a shorter period)",
            statement_timeout_ms=statement_timeout_ms,
        )
    if not isinstance(exc, psycopg.Error):
        return None
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return ReadOnlyDatabase("the database is read-only (a standby, or default_transaction_read_only "
                                "is on): it answers queries, not mutations")
    if isinstance(exc, psycopg.OperationalError) and connection_lost(exc):
        return ConnectionLost()
    # A lock wait cut short, or a rule only the database enforces (a date out of range): typed.
    return translate(exc)
