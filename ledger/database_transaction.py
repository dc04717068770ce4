"""A database transaction that reads and then writes, alike on one server and on a Citus cluster.

On a cluster (docs/scale-out.md) the per-account tables (balances, entries, open holds) refer to
reference tables (accounts, transactions). Once a statement of a transaction has read several
shards over parallel connections, Citus refuses to write a reference table in the same
transaction ("cannot modify table ... because there was a parallel operation on a distributed
table"). A product's step reads first (balances, a loan's state, an advance) and posts after, so
on a cluster its transaction runs in Citus's sequential mode from its first statement: one
connection per node, as the posting engine itself runs (sql/functions/post_batch.sql).

On one server nothing more is sent: whether the database is distributed is asked once per
connection and remembered.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

__all__ = ["database_transaction", "is_distributed"]

_distributed: weakref.WeakKeyDictionary[psycopg.Connection[Any], bool] = weakref.WeakKeyDictionary()


def is_distributed(conn: psycopg.Connection[Any]) -> bool:
    """Whether this connection's ledger is distributed (`ledger.distributed()`), asked once."""
    known = _distributed.get(conn)
    if known is None:
        row = conn.execute("select ledger.distributed()").fetchone()
        known = bool(row and row[0])
        _distributed[conn] = known
    return known


@contextmanager
def database_transaction(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """`conn.transaction()` (a savepoint inside the caller's transaction), in sequential mode on a
    cluster. Inside a transaction that already read shards in parallel, sequential mode comes
    too late: that caller has to start its transaction here too."""
    with conn.transaction():
        if is_distributed(conn):
            conn.execute("set local citus.multi_shard_modify_mode = 'sequential'")
        yield
