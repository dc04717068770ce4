"""Finding transactions: by kind, by account, by metadata containment, by effective and by
recorded time, newest first, keyset-paginated.

Each filter has an index (sql/0098_finding_indexes.sql). The query is composed of the filters
given and nothing else, so the planner sees plain conditions it can match to an index. A page is
ordered by id, except that with a time range (and no account) it is ordered by that time and
then id: the range's (time, id) index is then read backwards from the cursor and stops after a
page. Ordered by id, a narrow range deep in the past would have the planner read the primary key
backwards through every newer transaction (it assumes matches are spread evenly; times and ids
rise together). Kind and account read their index backwards from the cursor and stop after a
page; metadata containment reads a GIN index (unordered: its cost follows the matches).

A holder sees only transactions with a leg on one of its accounts; the holder's accounts are
found first (accounts_holder_idx) and the same per-account index then serves the filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from ledger.accounts import get_account
from ledger.cursors import instant_of_micros
from ledger.epoch import epoch_us
from ledger.errors import AccountNotFound, ValidationError
from ledger.filters import check_containment, check_range
from ledger.journal import TRANSACTION_COLUMNS, Transaction
from ledger.text import check_text

__all__ = ["TransactionFilter", "find_transactions", "search_query", "order_column", "position_fields",
           "position_of"]

_KIND = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")
_kind_length_max = 100


@dataclass(frozen=True)
class TransactionFilter:
    kind: str | None = None
    account_code: str | None = None
    metadata: object = None  # a JSON object from the caller; `validated` checks it
    effective_from: datetime | None = None
    effective_to: datetime | None = None
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None
    # Set by the caller from who is asking, never by a client: only transactions touching an
    # account of this holder are found.
    holder_id: str | None = field(default=None)

    def validated(self) -> TransactionFilter:
        if self.kind is not None and (not isinstance(self.kind, str) or len(self.kind) > _kind_length_max
                                      or not _KIND.fullmatch(self.kind)):
            raise ValidationError(f"kind must be a dotted lowercase name such as payment.capture, got "
                                  f"{str(self.kind)[:40]!r}", field="kind")
        if self.account_code is not None:
            if not isinstance(self.account_code, str) or len(self.account_code) > 200:
                raise ValidationError("accountCode must be an account code", field="accountCode")
            check_text(self.account_code, "accountCode")
        if self.metadata is not None:
            check_containment(self.metadata, "metadata")
        check_range(self.effective_from, self.effective_to, "effectiveFrom", "effectiveTo")
        check_range(self.recorded_from, self.recorded_to, "recordedFrom", "recordedTo")
        return self


def order_column(wanted: TransactionFilter) -> str | None:
    """The time a page is ordered by, newest first, before the id: the range's own column when a
    time range is given (and no account, whose index orders by id), so that the range's index is
    read backwards from the cursor and stops after a page; else None (by id alone)."""
    if wanted.account_code is not None or wanted.holder_id is not None:
        return None
    if wanted.effective_from is not None or wanted.effective_to is not None:
        return "effective_at"
    if wanted.recorded_from is not None or wanted.recorded_to is not None:
        return "recorded_at"
    return None


def position_fields(wanted: TransactionFilter) -> dict[str, type]:
    """What a cursor of this search holds: {"id"} or, ordered by a time, {"at", "id"}."""
    return {"id": int} if order_column(wanted) is None else {"at": int, "id": int}


def position_of(wanted: TransactionFilter, row: Transaction) -> dict[str, int]:
    """The cursor position after `row` in this search's order (times as microseconds since 1970)."""
    column = order_column(wanted)
    if column is None:
        return {"id": row.id}
    return {"at": epoch_us(row.effective_at if column == "effective_at" else row.recorded_at), "id": row.id}


def find_transactions(conn: psycopg.Connection[Any], wanted: TransactionFilter, *,
                      after: dict[str, int] | None = None, limit: int = 100) -> list[Transaction]:
    """Transactions matching every filter given, newest first, after the position `after` (from
    `position_of`, checked against `position_fields`).

    An account the caller may not see (another holder's) is answered as one that does not exist."""
    composed = search_query(conn, wanted, after=after, limit=limit)
    if composed is None:
        return []
    query, params = composed
    with conn.cursor(row_factory=class_row(Transaction)) as cur:
        return cur.execute(query, params).fetchall()


def search_query(conn: psycopg.Connection[Any], wanted: TransactionFilter, *, after: dict[str, int] | None = None,
                 limit: int = 100) -> tuple[sql.Composed, dict[str, Any]] | None:
    """The statement `find_transactions` runs and its parameters (None: nothing can match), so
    that a test can ask the planner how it reads it."""
    wanted = wanted.validated()
    column = order_column(wanted)
    conditions: list[sql.Composable] = []
    params: dict[str, Any] = {"limit": limit}
    before_id: int | None = None
    if after is not None:
        if set(after) != set(position_fields(wanted)):
            raise ValidationError("after is not a cursor for this list", field="after")
        before_id = after["id"]
        params["before"] = before_id
        if column is None:
            conditions.append(sql.SQL("t.id < %(before)s"))
        else:
            params["before_at"] = instant_of_micros(after["at"])
            conditions.append(sql.SQL("(t.{}, t.id) < (%(before_at)s, %(before)s)").format(sql.Identifier(column)))
    if wanted.kind is not None:
        conditions.append(sql.SQL("t.kind = %(kind)s"))
        params["kind"] = wanted.kind
    if wanted.metadata is not None:
        conditions.append(sql.SQL("t.metadata @> %(metadata)s"))
        params["metadata"] = Jsonb(check_containment(wanted.metadata, "metadata"))
    for name, start, end in (("effective_at", wanted.effective_from, wanted.effective_to),
                             ("recorded_at", wanted.recorded_from, wanted.recorded_to)):
        if start is not None:
            conditions.append(sql.SQL("t.{} >= %({})s").format(sql.Identifier(name), sql.SQL(name + "_from")))
            params[name + "_from"] = start
        if end is not None:
            conditions.append(sql.SQL("t.{} < %({})s").format(sql.Identifier(name), sql.SQL(name + "_to")))
            params[name + "_to"] = end
    where = sql.SQL(" and ").join(conditions) if conditions else sql.SQL("true")
    account_ids = _account_ids(conn, wanted)
    if account_ids is None:
        order = sql.SQL("t.id desc") if column is None else sql.SQL("t.{} desc, t.id desc").format(
            sql.Identifier(column))
        query = sql.SQL("select {columns} from ledger.transactions t where {where} order by {order} limit %(limit)s"
                        ).format(columns=sql.SQL(TRANSACTION_COLUMNS), where=where, order=order)
        return query, params
    if not account_ids:
        return None
    # Driven by entries (account_id, transaction_id), read backwards from the cursor, each id then
    # looked up and filtered on its own (`limit 1` keeps the lateral subquery a probe rather than a
    # join the planner could turn into a merge over every transaction): for one account the scan
    # stops once a page has passed the other filters. A transaction can have several legs on one
    # account: `distinct`.
    params["accounts"] = account_ids
    params["account"] = account_ids[0]
    query = sql.SQL(
        "select {columns} from (select distinct e.transaction_id from ledger.entries e where {account}{before}"
        " order by e.transaction_id desc) ids"
        " cross join lateral (select * from ledger.transactions t where t.id = ids.transaction_id and {where}"
        " limit 1) t order by ids.transaction_id desc limit %(limit)s"
    ).format(columns=sql.SQL(TRANSACTION_COLUMNS), where=where,
             account=sql.SQL("e.account_id = %(account)s" if len(account_ids) == 1
                             else "e.account_id = any(%(accounts)s)"),
             before=sql.SQL(" and e.transaction_id < %(before)s" if before_id is not None else ""))
    return query, params


def _account_ids(conn: psycopg.Connection[Any], wanted: TransactionFilter) -> list[int] | None:
    """The accounts a transaction must touch, or None when any will do."""
    if wanted.account_code is not None:
        try:
            account = get_account(conn, wanted.account_code)
        except AccountNotFound:
            account = None
        if account is None or (wanted.holder_id is not None and account.holder_id != wanted.holder_id):
            raise AccountNotFound(f"no account with code {wanted.account_code}", account=wanted.account_code)
        return [account.id]
    if wanted.holder_id is not None:
        rows = conn.execute("select id from ledger.accounts where holder_id = %s order by id",
                            (wanted.holder_id,)).fetchall()
        return [row[0] for row in rows]
    return None
