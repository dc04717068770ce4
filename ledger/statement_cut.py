"""Where a statement is cut: a recorded time (`known_at`) up to which the journal is final.

The journal horizon (sql/functions/journal_horizon.sql) gives the latest such time: no
transaction still in flight can record at or before it. A statement cut there, or at any
earlier time, reads the same whenever it is asked again; a cut past the horizon (or in the
future) could still change, so it is refused (`KnownAtNotFinal`).

Every figure of one statement (opening, closing, totals, the first page) is read in one
repeatable-read snapshot taken after the horizon; later pages are read through the cut their
cursor carries, which is final, so they agree with the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ledger.errors import KnownAtNotFinal, ValidationError
from ledger.statements import StatementPage, StatementTotals, statement_page, statement_totals
from ledger.statements import statement_cut as cut_in_cursor

__all__ = ["journal_horizon", "final_cut", "one_snapshot", "cut_position", "StatementRead", "read_statement"]


def journal_horizon(conn: psycopg.Connection[Any]) -> tuple[datetime, int]:
    """(known_at, xmin): the latest final cut and the journal feed's horizon (see the SQL)."""
    row = conn.execute("select known_at, xmin::text::bigint from ledger.journal_horizon()").fetchone()
    assert row is not None
    return row[0], int(row[1])


def final_cut(conn: psycopg.Connection[Any], known_at: datetime | None, *, field: str = "knownAt") -> datetime:
    """`known_at` if the journal is final up to it, the horizon when None; else KnownAtNotFinal.

    Call it before the snapshot that reads the statement is taken (see journal_horizon.sql).
    """
    horizon_at, _ = journal_horizon(conn)
    if known_at is None:
        return horizon_at
    if known_at.tzinfo is None:
        raise ValidationError(f"{field} must carry a UTC offset", field=field)
    if known_at > horizon_at:
        raise KnownAtNotFinal(
            f"{field} {known_at.isoformat()} is later than the journal is final for "
            f"({horizon_at.isoformat()}, the journal horizon); a statement cut there could change",
            field=field, known_at=known_at.isoformat(), horizon=horizon_at.isoformat())
    return known_at


@contextmanager
def one_snapshot(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """A read-only repeatable-read transaction on an idle autocommit connection (the pooled
    case); inside a caller's transaction, the caller's snapshot as it is."""
    if conn.autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        with conn.transaction():
            conn.execute("set transaction isolation level repeatable read, read only")
            yield
    else:
        yield


_POSITION_SQL = """
select t.created_xact::text::bigint
  from ledger.entries e join ledger.transactions t on t.id = e.transaction_id
 where e.account_id = %(id)s and e.account_version = ledger.version_known_at(%(id)s, %(known_at)s)
"""


def cut_position(conn: psycopg.Connection[Any], account_id: int, known_at: datetime) -> int:
    """The journal position of a cut: the `created_xact` of the account's newest transaction
    recorded by `known_at` (0 before its first). A function of the cut alone, so a statement
    asked again with the same `known_at` carries the same position."""
    row = conn.execute(_POSITION_SQL, {"id": account_id, "known_at": known_at}).fetchone()
    return 0 if row is None else int(row[0])


@dataclass(frozen=True)
class StatementRead:
    known_at: datetime
    totals: StatementTotals
    page: StatementPage


def read_statement(conn: psycopg.Connection[Any], account_id: int, currency: str, start: datetime, end: datetime,
                   *, first: int, after: str | None = None, known_at: datetime | None = None) -> StatementRead:
    """A statement's totals and one page, in one snapshot, cut at `known_at` (default: the
    horizon) or, for a later page, at the cut its cursor `after` carries. A `known_at` given with
    a cursor must be that cut: a page of another cut would not continue the one before it."""
    if after is not None:
        cut = cut_in_cursor(conn, account_id, start, end, after)  # its signature checked first
        if known_at is not None and known_at != cut:
            raise ValidationError(
                f"knownAt {known_at.isoformat()} is not the cut of the statement the cursor pages "
                f"({cut.isoformat()}): leave knownAt out, or send the statement's own", field="knownAt")
        known_at = cut
    known = final_cut(conn, known_at, field="after" if after is not None else "knownAt")
    with one_snapshot(conn):
        totals = statement_totals(conn, account_id, start, end, known)
        page = statement_page(conn, account_id, currency, start, end, first=first, after=after, known_at=known)
    return StatementRead(known, totals, page)
