"""Account statements: opening balance, the posted entries of a period in effective order with
their running balance, closing balance and debit and credit totals.

A period is half-open, [from, to). A statement is cut at a recorded time (`known_at`, default
the journal horizon, see ledger/statement_cut.py) so that every page of it, and a reproduction
of it later, shows the same figures whatever is posted meanwhile. Pages are keyset-paginated on
(effective_at, entry id); the cursor carries the running balance, so a page deep in a long period
costs what the first one does. The server trusts that balance, so the cursor is signed and bound to its account and period
(`ledger.cursors.sign_cursor`): an edited or replayed cursor is a ValidationError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from ledger.balance_checkpoints import posted_before
from ledger.cursor_keys import cursor_key
from ledger.cursors import instant_of_micros, open_signed_cursor, sign_cursor
from ledger.epoch import epoch_us
from ledger.errors import ValidationError
from ledger.instants import check_instant

__all__ = ["StatementLine", "StatementPage", "StatementTotals", "StatementCursor", "statement_page",
           "statement_totals", "statement_cut", "statement_binding", "opening_balance", "page_size_max"]

page_size_max = 500
# Opening balances are summed forwards when few entries precede the period, else backwards from
# the balance the last known entry carries; either way the scan is bounded by the smaller side.
_opening_scan_max = 10_000


@dataclass(frozen=True)
class StatementLine:
    entry_id: int
    transaction_id: int
    account_version: int
    side: str
    amount: int
    effective_at: datetime
    recorded_at: datetime
    running_balance: int
    cursor: str


@dataclass(frozen=True)
class StatementPage:
    account_id: int
    currency: str
    known_at: datetime
    lines: list[StatementLine]
    has_next_page: bool


@dataclass(frozen=True)
class StatementTotals:
    opening: int
    closing: int
    total_debits: int
    total_credits: int


@dataclass(frozen=True)
class StatementCursor:
    """Where a statement page ended: its last line, that line's running balance, and the cut.

    This module alone knows the format; callers pass the encoded string through unopened, and
    read the cut from it with `statement_cut`. The cursor is signed with the deployment's key and
    bound (`statement_binding`) to the account and period it pages.
    """

    effective_at: datetime
    entry_id: int
    running_balance: int
    known_at: datetime

    def encode(self, *, key: bytes, binding: str) -> str:
        return sign_cursor({"at": epoch_us(self.effective_at), "id": self.entry_id,
                            "balance": self.running_balance, "known": epoch_us(self.known_at)},
                           key=key, binding=binding)

    @classmethod
    def decode(cls, cursor: str, *, key: bytes, binding: str, field: str = "after") -> StatementCursor:
        """A ValidationError on `field` when `cursor` is not a statement cursor signed for `binding`."""
        position = open_signed_cursor(cursor, fields={"at": int, "id": int, "balance": int, "known": int},
                                      key=key, binding=binding, field=field)
        return cls(instant_of_micros(position["at"], field=field), position["id"], position["balance"],
                   instant_of_micros(position["known"], field=field))


def statement_binding(account_id: int, start: datetime, end: datetime) -> str:
    """What a statement cursor pages: one account over one period."""
    return f"statement {account_id} {epoch_us(start)} {epoch_us(end)}"


def statement_cut(conn: psycopg.Connection[Any], account_id: int, start: datetime, end: datetime,
                  after: str) -> datetime:
    """The cut (`known_at`) a statement cursor carries, once its signature is checked."""
    _check_period(start, end)
    return StatementCursor.decode(after, key=cursor_key(conn),
                                  binding=statement_binding(account_id, start, end)).known_at


_MICROSECOND = timedelta(microseconds=1)

# The posted balance the last entry known at the cut carries.
_KNOWN_POSTED_SQL = """coalesce((select e.posted_balance_after from ledger.entries e
                  where e.account_id = %(id)s
                    and e.account_version = ledger.version_known_at(%(id)s, %(known_at)s)), 0)"""
# Sums of posted entries from either end of effective time, each stopping after %(limit)s entries
# (sql/functions/posted_sum.sql).
_SUM_BEFORE_SQL = "select entries, amount from ledger.posted_sum_before(%(id)s, %(from)s, %(known_at)s, %(limit)s)"
_SUM_FROM_SQL = f"""
select {_KNOWN_POSTED_SQL}, s.entries, s.amount
  from ledger.posted_sum_from(%(id)s, %(from)s, %(known_at)s, %(limit)s) s
"""
# Everything from the start on, in no particular order (a bitmap scan suits reading it all).
_OPENING_FROM_ALL_SQL = f"""
select {_KNOWN_POSTED_SQL}
     - coalesce((select sum(case when e.side = a.normal_side then e.amount else -e.amount end)
                   from ledger.entries e join ledger.accounts a on a.id = e.account_id
                  where e.account_id = %(id)s and e.layer = 'posted' and e.effective_at >= %(from)s
                    and e.recorded_at <= %(known_at)s), 0)
"""


def opening_balance(conn: psycopg.Connection[Any], account_id: int, start: datetime, known_at: datetime,
                    *, scan_max: int | None = None, use_checkpoints: bool = True) -> int:
    """Posted balance from entries effective before `start`, as known at `known_at`.

    From the account's balance checkpoints (ledger/balance_checkpoints.py) when a sweep recent
    enough for `known_at` has been made: a bounded read wherever `start` falls. Otherwise summed
    forwards when at most `scan_max` entries precede `start`; else backwards from the balance
    the last known entry carries, when at most `scan_max` entries follow it; else backwards
    without a limit (everything after `start`). `use_checkpoints=False` sums without them.
    """
    if use_checkpoints:
        summed = posted_before(conn, account_id, start, known_at)
        if summed is not None:
            return summed
    cap = _opening_scan_max if scan_max is None else scan_max
    params: dict[str, Any] = {"id": account_id, "from": start, "known_at": known_at, "limit": cap + 1}
    row = conn.execute(_SUM_BEFORE_SQL, params).fetchone()
    assert row is not None
    if row[0] <= cap:
        return int(row[1])
    row = conn.execute(_SUM_FROM_SQL, params).fetchone()
    assert row is not None
    if row[1] <= cap:
        return int(row[0] - row[2])
    row = conn.execute(_OPENING_FROM_ALL_SQL, params, prepare=False).fetchone()
    assert row is not None
    return int(row[0])


_PAGE_SQL = """
select e.id, e.transaction_id, e.account_version, e.side, e.amount, e.effective_at, e.recorded_at,
       case when e.side = a.normal_side then e.amount else -e.amount end as signed
  from ledger.entries e join ledger.accounts a on a.id = e.account_id
 where e.account_id = %(id)s and e.layer = 'posted'
   and e.effective_at >= %(from)s and e.effective_at < %(to)s and e.recorded_at <= %(known_at)s
   and (e.effective_at, e.id) > (%(after_at)s, %(after_id)s)
 order by e.effective_at, e.id
 limit %(limit)s
"""


def _check_period(start: datetime, end: datetime) -> None:
    check_instant(start, "from")
    check_instant(end, "to")
    if end <= start:
        raise ValidationError(f"to ({end.isoformat()}) must be after from ({start.isoformat()})", field="to")


def statement_page(
    conn: psycopg.Connection[Any], account_id: int, currency: str, start: datetime, end: datetime, *,
    first: int = 100, after: str | None = None, known_at: datetime | None = None,
) -> StatementPage:
    _check_period(start, end)
    if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= page_size_max:
        raise ValidationError(f"first must be between 0 and {page_size_max}", field="first")
    key, binding = cursor_key(conn), statement_binding(account_id, start, end)
    if after is not None:
        position = StatementCursor.decode(after, key=key, binding=binding)
        after_at, after_id = position.effective_at, position.entry_id
        running, known = position.running_balance, position.known_at
    else:
        # The journal horizon: no transaction in flight can still record at or before it.
        known = known_at or conn.execute("select known_at from ledger.journal_horizon()").fetchone()[0]  # type: ignore[index]
        after_at, after_id = start - _MICROSECOND, 0
        running = opening_balance(conn, account_id, start, known)
    rows = conn.execute(_PAGE_SQL, {
        "id": account_id, "from": start, "to": end, "known_at": known, "after_at": after_at,
        "after_id": after_id, "limit": first + 1,
    }, prepare=False).fetchall()  # a cached generic plan cannot know how selective the period is
    lines = []
    for row in rows[:first]:
        running += row[7]
        cursor = StatementCursor(row[5], row[0], running, known).encode(key=key, binding=binding)
        lines.append(StatementLine(row[0], row[1], row[2], row[3], row[4], row[5], row[6], running, cursor))
    return StatementPage(account_id, currency, known, lines, has_next_page=len(rows) > first)


_TOTALS_SQL = """
select coalesce(sum(e.amount) filter (where e.side = 'debit'), 0),
       coalesce(sum(e.amount) filter (where e.side = 'credit'), 0),
       coalesce(sum(case when e.side = a.normal_side then e.amount else -e.amount end), 0)
  from ledger.entries e join ledger.accounts a on a.id = e.account_id
 where e.account_id = %(id)s and e.layer = 'posted'
   and e.effective_at >= %(from)s and e.effective_at < %(to)s and e.recorded_at <= %(known_at)s
"""


def statement_totals(
    conn: psycopg.Connection[Any], account_id: int, start: datetime, end: datetime, known_at: datetime,
) -> StatementTotals:
    _check_period(start, end)
    opening = opening_balance(conn, account_id, start, known_at)
    row = conn.execute(_TOTALS_SQL, {"id": account_id, "from": start, "to": end, "known_at": known_at},
                       prepare=False).fetchone()
    assert row is not None
    return StatementTotals(opening, opening + int(row[2]), int(row[0]), int(row[1]))
