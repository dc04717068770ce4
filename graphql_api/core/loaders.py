"""Batch functions behind the request's DataLoaders: `fn(conn, keys) -> {key: value}`, one query
per batch. Use them as `await info.context.load(accounts_by_id, 42)`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from ledger.accounts import ACCOUNT_COLUMNS, Account, get_accounts
from ledger.balances import Balance, balance, balances_now, balances_now_async
from ledger.journal import Entry, entries_of_transactions, get_transactions, holds

__all__ = [
    "accounts_by_id",
    "accounts_with_balance_by_code_async",
    "transactions_by_id",
    "entries_by_transaction",
    "entries_by_key",
    "balances_by_account",
    "balances_at",
    "holds_by_id",
]

accounts_by_id = get_accounts
transactions_by_id = get_transactions
entries_by_transaction = entries_of_transactions
balances_by_account = balances_now
holds_by_id = holds


async def accounts_with_balance_by_code_async(
    conn: psycopg.AsyncConnection[Any], codes: Sequence[str],
) -> dict[str, tuple[Account, Balance]]:
    """Accounts and their current balances in one trip, on the async pool: a client asking for
    an account mostly asks for its balance too, and `account(code)` is the most frequent read,
    whose thread hop cost more CPU than its two primary-key lookups."""
    async with conn.cursor(row_factory=class_row(Account)) as cur:
        await cur.execute(f"select {ACCOUNT_COLUMNS} from ledger.accounts where code = any(%s)", (list(codes),))
        accounts = {a.code: a for a in await cur.fetchall()}
    balances = await balances_now_async(conn, [a.id for a in accounts.values()])
    return {code: (account, balances[account.id]) for code, account in accounts.items()}


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
