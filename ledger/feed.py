"""The journal feed: every transaction with its entries, in an order a script can follow with a
cursor and never miss one.

Order: (created_xact, id), where created_xact is the database transaction that wrote the journal
transaction. Ids are handed out when a transaction inserts, but transactions commit in any order:
id 11 may commit before id 10. A feed ordered by id alone would deliver 11, move its cursor past
10, and never deliver 10. So the feed only returns transactions whose created_xact is below the
journal horizon (`ledger.journal_horizon()`, sql/functions/journal_horizon.sql), read just before the page: the
oldest database transaction then running in this database. Every database transaction older
than that has finished (committed or rolled back) and is visible to the page's snapshot, so
nothing can later appear before the cursor. (Inside a caller's transaction the page uses its own
snapshot's xmin, which is as safe but also waits for other databases' transactions.)

The price: a database transaction that stays open in this database holds the horizon back
(a writer, or any session that took a transaction id, including one idle in transaction).
While it is open the feed delivers nothing written after it started, and delivers it all once
it ends; keep writers short and set `idle_in_transaction_session_timeout`. Sessions in other
databases of the same server do not hold it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row

from ledger.cursors import decode_cursor, encode_cursor
from ledger.errors import ValidationError
from ledger.journal import Entry, Transaction, entries_of_transactions

__all__ = ["FeedItem", "FeedPage", "journal_page", "feed_cursor", "item_json", "page_size_max", "page_size_default"]

page_size_max = 1000
page_size_default = 100

_CURSOR_FIELDS: dict[str, type] = {"x": int, "id": int}

# The transaction columns of ledger.journal.Transaction, plus the writing database transaction.
_PAGE_SQL = """
select t.id, t.idempotency_key, t.kind, t.description, t.effective_at, t.recorded_at,
       t.metadata, t.is_hold, t.expires_at, t.reverses_id, t.resolves_hold_id, t.hold_action,
       (select r.id from ledger.transactions r where r.reverses_id = t.id) as reversed_by_id,
       t.created_xact::text::bigint as created_xact
  from ledger.transactions t
 where t.created_xact < coalesce(%(horizon)s::text::xid8, pg_snapshot_xmin(pg_current_snapshot()))
   and (t.created_xact, t.id) > (%(xact)s::text::xid8, %(id)s)
 order by t.created_xact, t.id
 limit %(limit)s
"""


@dataclass(frozen=True)
class _Row:
    id: int
    idempotency_key: str
    kind: str
    description: str
    effective_at: Any
    recorded_at: Any
    metadata: dict[str, Any]
    is_hold: bool
    expires_at: Any
    reverses_id: int | None
    resolves_hold_id: int | None
    hold_action: str | None
    reversed_by_id: int | None
    created_xact: int


@dataclass(frozen=True)
class FeedItem:
    transaction: Transaction
    entries: list[Entry]
    created_xact: int   # the writing database transaction (xid8), part of the order
    cursor: str         # resume after this transaction


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedItem]
    has_next_page: bool
    # Where to resume: the last item's cursor, or the cursor given when the page is empty.
    end_cursor: str | None


def feed_cursor(created_xact: int, transaction_id: int) -> str:
    return encode_cursor({"x": created_xact, "id": transaction_id})


def _position(after: str | None) -> tuple[int, int]:
    if after is None:
        return 0, 0
    position = decode_cursor(after, fields=_CURSOR_FIELDS)
    if position["x"] < 0 or position["id"] < 0:
        raise ValidationError("after is not a cursor for this list", field="after")
    return position["x"], position["id"]


def _horizon(conn: psycopg.Connection[Any]) -> str | None:
    """The journal horizon, read in its own statement before the page's snapshot is taken; None
    inside the caller's transaction, where the page uses its own snapshot's xmin instead (safe,
    but held back by transactions in every database of the server)."""
    if not conn.autocommit or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return None
    row = conn.execute("select xmin::text from ledger.journal_horizon()").fetchone()
    assert row is not None
    return str(row[0])


def journal_page(conn: psycopg.Connection[Any], *, after: str | None = None,
                 first: int = page_size_default) -> FeedPage:
    """The transactions after `after` (None: from the start), at most `first`, with entries."""
    if isinstance(first, bool) or not isinstance(first, int) or not 1 <= first <= page_size_max:
        raise ValidationError(f"first must be between 1 and {page_size_max}, got {first!r}", field="first")
    xact, last_id = _position(after)
    with conn.cursor(row_factory=class_row(_Row)) as cur:
        rows = cur.execute(_PAGE_SQL, {"xact": str(xact), "id": last_id, "limit": first + 1,
                                       "horizon": _horizon(conn)}).fetchall()
    page = rows[:first]
    entries = entries_of_transactions(conn, [r.id for r in page]) if page else {}
    items = [
        FeedItem(
            Transaction(r.id, r.idempotency_key, r.kind, r.description, r.effective_at, r.recorded_at,
                        r.metadata, r.is_hold, r.expires_at, r.reverses_id, r.resolves_hold_id,
                        r.hold_action, r.reversed_by_id),
            entries[r.id], r.created_xact, feed_cursor(r.created_xact, r.id))
        for r in page
    ]
    end = items[-1].cursor if items else after
    return FeedPage(items, has_next_page=len(rows) > first, end_cursor=end)


def item_json(item: FeedItem, codes: dict[int, str]) -> dict[str, Any]:
    """A feed item as JSON for scripts: amounts as integers of minor units, times in ISO 8601,
    the database transaction id as a string (xid8 is 64-bit)."""
    t = item.transaction
    return {
        "cursor": item.cursor,
        "id": t.id,
        "createdXact": str(item.created_xact),
        "idempotencyKey": t.idempotency_key,
        "kind": t.kind,
        "description": t.description,
        "effectiveAt": t.effective_at.isoformat(),
        "recordedAt": t.recorded_at.isoformat(),
        "metadata": t.metadata,
        "isHold": t.is_hold,
        "expiresAt": t.expires_at.isoformat() if t.expires_at else None,
        "reversesId": t.reverses_id,
        "resolvesHoldId": t.resolves_hold_id,
        "holdAction": t.hold_action,
        "entries": [
            {"account": codes.get(e.account_id, str(e.account_id)), "accountVersion": e.account_version,
             "side": e.side, "amountMinor": e.amount, "currency": e.currency, "layer": e.layer,
             "postedBalanceAfterMinor": e.posted_balance_after,
             "pendingBalanceAfterMinor": e.pending_balance_after}
            for e in item.entries
        ],
    }
