"""Batch functions behind the request's DataLoaders: `fn(conn, keys) -> {key: value}`, one query
per batch. Use them as `await info.context.load(accounts_by_id, 42)`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from graphql_api.read_gather import gather_reads
from ledger.accounts import get_accounts
from ledger.balances import Balance, accounts_with_balances_by_code, balance, balances_now
from ledger.journal import Entry, entries_of_transactions, get_transactions, holds

__all__ = [
    "accounts_by_id",
    "accounts_with_balance_by_code",
    "transactions_by_id",
    "entries_by_transaction",
    "entries_by_key",
    "balances_by_account",
    "balances_at",
    "holds_by_id",
]

accounts_by_id = gather_reads(get_accounts)
transactions_by_id = gather_reads(get_transactions)
entries_by_transaction = gather_reads(entries_of_transactions)
balances_by_account = gather_reads(balances_now)
holds_by_id = holds
# What `account(code) { balance }` reads, in one statement; requests share its trips.
accounts_with_balance_by_code = gather_reads(accounts_with_balances_by_code)


def balances_at(
    conn: psycopg.Connection[Any], keys: Sequence[tuple[int, datetime | None, datetime | None]],
) -> dict[tuple[int, datetime | None, datetime | None], Balance]:
    """Balances as of / known at, keyed (account id, as_of, known_at): one query each, but one
    trip from the event loop for a whole page of accounts."""
    return {key: balance(conn, key[0], as_of=key[1], known_at=key[2]) for key in keys}


def entries_by_key(conn: psycopg.Connection[Any], keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], Entry]:
    """Entries by their primary key (account id, account version)."""
    with conn.cursor(row_factory=class_row(Entry)) as cur:
        rows = cur.execute(
            """select e.id, e.transaction_id, e.account_id, e.account_version, e.currency, e.side, e.amount,
                      e.layer, e.effective_at, e.recorded_at, e.posted_balance_after, e.pending_balance_after
                 from ledger.entries e
                 join unnest(%s::bigint[], %s::bigint[]) k (account_id, account_version)
                   on e.account_id = k.account_id and e.account_version = k.account_version""",
            ([k[0] for k in keys], [k[1] for k in keys]),
        ).fetchall()
    return {(e.account_id, e.account_version): e for e in rows}
