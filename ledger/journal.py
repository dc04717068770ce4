"""Reading the journal: transactions with their entries, holds and their state, trial balance."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from ledger.balances import LATER_POSTED_SQL, NOTHING_LATER_SQL
from ledger.instants import check_instant

__all__ = [
    "TRANSACTION_COLUMNS",
    "Transaction",
    "Entry",
    "HoldStatus",
    "HoldState",
    "TrialBalanceLine",
    "TrialBalanceTotal",
    "get_transactions",
    "get_transaction_by_key",
    "entries_of_transactions",
    "entries_of_account",
    "holds",
    "trial_balance",
    "trial_balance_totals",
]


@dataclass(frozen=True)
class Transaction:
    id: int
    idempotency_key: str
    kind: str
    description: str
    effective_at: datetime
    recorded_at: datetime
    metadata: dict[str, Any]
    is_hold: bool
    expires_at: datetime | None
    reverses_id: int | None
    resolves_hold_id: int | None
    hold_action: str | None
    reversed_by_id: int | None


@dataclass(frozen=True)
class Entry:
    id: int
    transaction_id: int
    account_id: int
    account_version: int
    currency: str
    side: str
    amount: int
    layer: str
    effective_at: datetime
    recorded_at: datetime
    posted_balance_after: int
    pending_balance_after: int


TRANSACTION_COLUMNS = """t.id, t.idempotency_key, t.kind, t.description, t.effective_at, t.recorded_at,
    t.metadata, t.is_hold, t.expires_at, t.reverses_id, t.resolves_hold_id, t.hold_action,
    (select r.id from ledger.transactions r where r.reverses_id = t.id) as reversed_by_id"""

_ENTRY_COLUMNS = """e.id, e.transaction_id, e.account_id, e.account_version, e.currency, e.side, e.amount,
    e.layer, e.effective_at, e.recorded_at, e.posted_balance_after, e.pending_balance_after"""


def get_transactions(conn: psycopg.Connection[Any], ids: Sequence[int]) -> dict[int, Transaction]:
    with conn.cursor(row_factory=class_row(Transaction)) as cur:
        rows = cur.execute(
            f"select {TRANSACTION_COLUMNS} from ledger.transactions t where t.id = any(%s)", (list(ids),)
        ).fetchall()
    return {t.id: t for t in rows}


def get_transaction_by_key(conn: psycopg.Connection[Any], key: str) -> Transaction | None:
    with conn.cursor(row_factory=class_row(Transaction)) as cur:
        return cur.execute(
            f"select {TRANSACTION_COLUMNS} from ledger.transactions t where t.idempotency_key = %s", (key,)
        ).fetchone()


def entries_of_transactions(conn: psycopg.Connection[Any], ids: Sequence[int]) -> dict[int, list[Entry]]:
    """Entries of many transactions in one query, keyed by transaction id."""
    with conn.cursor(row_factory=class_row(Entry)) as cur:
        rows = cur.execute(
            f"""select {_ENTRY_COLUMNS} from ledger.entries e where e.transaction_id = any(%s)
                order by e.transaction_id, e.id""", (list(ids),)
        ).fetchall()
    grouped: dict[int, list[Entry]] = {i: [] for i in ids}
    for entry in rows:
        grouped[entry.transaction_id].append(entry)
    return grouped


def entries_of_account(
    conn: psycopg.Connection[Any], account_id: int, *, start: datetime | None = None, end: datetime | None = None,
    after: tuple[datetime, int] | None = None, limit: int = 100,
) -> list[Entry]:
    """An account's entries (both layers) in effective order, keyset-paginated on (effective_at, id)."""
    with conn.cursor(row_factory=class_row(Entry)) as cur:
        return cur.execute(
            f"""select {_ENTRY_COLUMNS} from ledger.entries e
                 where e.account_id = %(id)s
                   and e.effective_at >= coalesce(%(start)s, '-infinity'::timestamptz)
                   and e.effective_at < coalesce(%(end)s, 'infinity'::timestamptz)
                   and (e.effective_at, e.id) > (coalesce(%(after_at)s, '-infinity'::timestamptz), %(after_id)s)
                 order by e.effective_at, e.id limit %(limit)s""",
            {"id": account_id, "start": start, "end": end, "after_at": after[0] if after else None,
             "after_id": after[1] if after else 0, "limit": limit},
        ).fetchall()


class HoldStatus(enum.Enum):
    PENDING = "PENDING"
    POSTED = "POSTED"
    VOIDED = "VOIDED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class HoldState:
    id: int
    status: HoldStatus
    amount: int  # the sum of the hold's debit legs
    currency: str
    expires_at: datetime | None
    resolved_by_id: int | None


_HOLDS_SQL = """
select h.id, h.expires_at, r.id as resolved_by, r.hold_action, legs.amount, legs.currency,
       h.expires_at is not null and h.expires_at <= clock_timestamp() as expired
  from ledger.transactions h
  left join ledger.transactions r on r.resolves_hold_id = h.id
  -- The legs of the asked ids, summed once per hold (not a subquery per hold: on a Citus
  -- cluster the entries are distributed by account, and only a list of ids can be sent to them).
  left join (select e.transaction_id, sum(e.amount) filter (where e.side = 'debit') as amount,
                    min(e.currency) as currency
               from ledger.entries e where e.transaction_id = any(%(ids)s)
              group by e.transaction_id) legs on legs.transaction_id = h.id
 where h.id = any(%(ids)s) and h.is_hold
"""


def holds(conn: psycopg.Connection[Any], ids: Sequence[int]) -> dict[int, HoldState]:
    """State of holds: posted or voided once resolved, expired once past expiry, else pending."""
    found = {}
    for hold_id, expires_at, resolved_by, action, amount, currency, expired in conn.execute(
        _HOLDS_SQL, {"ids": list(ids)}
    ):
        if action == "post":
            status = HoldStatus.POSTED
        elif action == "void":
            status = HoldStatus.VOIDED
        elif expired:
            status = HoldStatus.EXPIRED
        else:
            status = HoldStatus.PENDING
        found[hold_id] = HoldState(hold_id, status, int(amount), currency, expires_at, resolved_by)
    return found


@dataclass(frozen=True)
class TrialBalanceLine:
    account_id: int
    code: str
    currency: str
    debit_balance: int   # posted debits minus credits when positive, else 0
    credit_balance: int  # posted credits minus debits when positive, else 0


_TRIAL_BALANCE_SQL = """select a.id, a.code, a.currency,
                  b.posted_debits - b.posted_credits - coalesce(later.net, 0) as net
             from ledger.accounts a join ledger.balances b on b.account_id = a.id
             {later}
            order by a.code"""
_TRIAL_BALANCE_NOW_SQL = _TRIAL_BALANCE_SQL.replace("{later}", NOTHING_LATER_SQL)
_TRIAL_BALANCE_AS_OF_SQL = _TRIAL_BALANCE_SQL.replace("{later}", LATER_POSTED_SQL)


def trial_balance(conn: psycopg.Connection[Any], *, as_of: datetime | None = None) -> list[TrialBalanceLine]:
    """Posted balances of every account as debit or credit balances; their totals per currency
    are equal exactly when the ledger balances."""
    if as_of is not None:
        check_instant(as_of, "asOf")
    rows = conn.execute(
        _TRIAL_BALANCE_NOW_SQL if as_of is None else _TRIAL_BALANCE_AS_OF_SQL, {"as_of": as_of},
    ).fetchall()
    return [TrialBalanceLine(r[0], r[1], r[2], max(int(r[3]), 0), max(-int(r[3]), 0)) for r in rows]


@dataclass(frozen=True)
class TrialBalanceTotal:
    currency: str
    debit_total: int   # the currency's debit balances summed
    credit_total: int  # the currency's credit balances summed

    @property
    def balanced(self) -> bool:
        return self.debit_total == self.credit_total


def trial_balance_totals(lines: Sequence[TrialBalanceLine]) -> list[TrialBalanceTotal]:
    """Per currency, in currency order: the lines' debit and credit balances summed. The ledger
    balances exactly when every currency's two totals are equal."""
    sums: dict[str, tuple[int, int]] = {}
    for line in lines:
        debits, credits = sums.get(line.currency, (0, 0))
        sums[line.currency] = (debits + line.debit_balance, credits + line.credit_balance)
    return [TrialBalanceTotal(currency, debits, credits) for currency, (debits, credits) in sorted(sums.items())]
