"""The daily income pass: publish a fund's income per 10,000 units and credit every holder.

A fund publishes per business day (ledger/calendar.py). The day's income is posted effective at
the day's end, the start of the next business day, so it counts from the next day on (daily
compounding); "balance at the day's end" counts what is effective strictly before it.

One SQL statement computes every holder's income from its balance at the day's end (the
projection minus what is effective from the day's end on, as `ledger.balances.balance(as_of=)`
does); Python cuts the result into multi-leg transactions of one debit on the nominee account
and up to 99 holder credits (the core allows 100 legs), and posts them through
`ledger.posting.post`, `transactions_per_call` transactions per call, each call committed on
its own: a pass over a million holders never holds the fund's accounts locked for minutes.

Once per fund and date: the figure is recorded first (a different figure for the same day is
IncomeAlreadyPublished), then the batches, whose idempotency keys are derived from fund, date
and batch number, then a run row. A pass cut short is resumed by publishing again: the holders
and their balances at the day's end have not changed, so the same batches form again, those
already posted replay, and the rest are posted. A finished pass answers as a replay.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TextIO

import psycopg
from psycopg import sql

from ledger import calendar
from ledger.accounts import Side, like_category
from ledger.database_transaction import database_transaction
from ledger.errors import ValidationError
from ledger.posting import Leg, Transfer, legs_per_transaction_max, post
from ledger.products.fund import (
    IncomeAlreadyPublished,
    IncomeOutOfOrder,
    get_fund,
    holdings_prefix,
    income_lock_class,
    parse_income,
    units_account,
)
from ledger.progress import Progress

__all__ = [
    "holders_per_transaction_max",
    "transactions_per_call",
    "income_statement_timeout_ms",
    "IncomeRun",
    "HolderIncome",
    "publish_income",
    "holder_incomes",
]

# One leg of every income transaction debits the nominee account; the rest credit holders.
holders_per_transaction_max = legs_per_transaction_max - 1
# Transactions per post() call, each call one commit: 9,900 holders, about a second of work
# holding the nominee account's row lock. Measured for 100,000 holders: 8 per call 24.9 s,
# 30 19.4 s, 100 14.7 s, 300 16.6 s.
transactions_per_call = 100
# Statements of the pass may outlast a short API statement timeout: the holders' query reads
# every holding (about 10 s for a million here) and each post() call writes 9,900 legs.
income_statement_timeout_ms = 300_000
_QUOTE_PLACES = Decimal("0.0001")
_LOCK_CLASS = income_lock_class


@dataclass(frozen=True)
class IncomeRun:
    fund_id: str
    income_date: date
    income_per_10k: Decimal
    holders: int          # holders credited (income of at least 1 fen)
    income_fen: int
    transactions: int
    replayed: bool        # True when the day was already distributed: nothing was written


@dataclass(frozen=True)
class HolderIncome:
    account_code: str
    balance_fen: int
    income_fen: int


# Every holding's posted balance at the day's end and its income; credit-normal accounts. The
# lateral aggregate runs once per holding (an index probe for entries effective from the day's
# end on), correlated on the balance's account key: a Citus cluster plans that next to the
# reference table `accounts`, not a correlation on `accounts` itself (docs/scale-out.md); div()
# truncates exactly (numeric division could round at a large balance's scale).
_INCOMES_SQL = """
select h.code, h.balance, div(h.balance * %(income)s::numeric, 10000)::bigint as income
  from (select a.id, a.code, b.posted_credits - b.posted_debits - coalesce(later.net, 0) as balance
          from ledger.accounts a
          join ledger.balances b on b.account_id = a.id
          left join lateral (
              select sum(case when e.side = 'credit' then e.amount else -e.amount end) as net
                from ledger.entries e
               where e.account_id = b.account_id and e.layer = 'posted' and e.effective_at >= %(day_end)s) later on true
         where a.code like %(like)s) h
 where h.balance > 0
 order by h.id
"""


def holder_incomes(
    conn: psycopg.Connection[Any], fund_id: str, income_date: date, income_per_10k: Decimal,
) -> list[HolderIncome]:
    """Every holder with a positive balance at the day's end, in account id order, with its income."""
    with database_transaction(conn):
        conn.execute(sql.SQL("set local statement_timeout = {}").format(sql.Literal(income_statement_timeout_ms)))
        # A plain index-probe plan: JIT compiling it costs seconds and saves nothing.
        conn.execute("set local jit = off")
        rows = conn.execute(_INCOMES_SQL, {
            "income": income_per_10k, "day_end": calendar.day_end(income_date),
            "like": like_category(holdings_prefix(fund_id))}).fetchall()
    return [HolderIncome(row[0], int(row[1]), int(row[2])) for row in rows]


def publish_income(
    conn: psycopg.Connection[Any], fund_id: str, income_date: date, income_per_10k: Decimal | str, *,
    progress: TextIO | None = sys.stderr, now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> IncomeRun:
    """Record the day's figure and credit every holder floor(balance x R / 10000) fen as units.

    On a connection with no transaction open each batch commits on its own; inside the caller's
    transaction the whole pass is one atomic unit.
    """
    # Four places always, so a resumed pass fingerprints its batches exactly as the first did.
    income = parse_income(income_per_10k).quantize(_QUOTE_PLACES)
    if not isinstance(income_date, date) or isinstance(income_date, datetime):
        raise ValidationError(f"date must be a calendar date, got {income_date!r}", field="date")
    if calendar.day_end(income_date) > now():
        raise ValidationError(
            f"income for {income_date} can be published once the business day has ended "
            f"(at {calendar.day_end(income_date).isoformat()})", field="date")
    fund = get_fund(conn, fund_id)
    with _fund_lock(conn, fund.id), _long_statements(conn):
        started_at = now()
        if not _record_figure(conn, fund.fund_id, income_date, income):
            done = conn.execute(
                """select holders, income_fen, transactions from ledger.fund_income_runs
                    where fund_id = %s and income_date = %s""", (fund.fund_id, income_date)).fetchone()
            if done is not None:
                return IncomeRun(fund.fund_id, income_date, income, int(done[0]), int(done[1]), int(done[2]), True)
        incomes = [h for h in holder_incomes(conn, fund.fund_id, income_date, income) if h.income_fen > 0]
        transactions = _post_incomes(conn, fund.fund_id, income_date, income, incomes, progress)
        total_fen = sum(h.income_fen for h in incomes)
        conn.execute(
            """insert into ledger.fund_income_runs
                   (fund_id, income_date, holders, income_fen, transactions, started_at)
               values (%s, %s, %s, %s, %s, %s)""",
            (fund.fund_id, income_date, len(incomes), total_fen, transactions, started_at))
    return IncomeRun(fund.fund_id, income_date, income, len(incomes), total_fen, transactions, False)


@contextmanager
def _fund_lock(conn: psycopg.Connection[Any], fund_row_id: int) -> Iterator[None]:
    """One income pass per fund at a time, across the batches' separate commits."""
    assert 0 < fund_row_id < 2**31, "fund row ids fit the advisory lock's int4 object id"
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute("select pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, fund_row_id))
        yield
        return
    conn.execute("select pg_advisory_lock(%s, %s)", (_LOCK_CLASS, fund_row_id))
    try:
        yield
    finally:
        conn.execute("select pg_advisory_unlock(%s, %s)", (_LOCK_CLASS, fund_row_id))


@contextmanager
def _long_statements(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """The pass's statement timeout, restored afterwards (the connection may be the API pool's)."""
    in_transaction = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    row = conn.execute("select current_setting('statement_timeout')").fetchone()
    assert row is not None
    conn.execute("select set_config('statement_timeout', %s, %s)",
                 (str(income_statement_timeout_ms), in_transaction))
    try:
        yield
    finally:
        if not in_transaction:
            conn.execute("select set_config('statement_timeout', %s, false)", (row[0],))


def _record_figure(conn: psycopg.Connection[Any], fund_id: str, income_date: date, income: Decimal) -> bool:
    """Insert the day's figure; False when it was there already with the same figure."""
    with database_transaction(conn):
        existing = conn.execute(
            "select income_per_10k from ledger.fund_incomes where fund_id = %s and income_date = %s",
            (fund_id, income_date)).fetchone()
        if existing is not None:
            if existing[0] != income:
                raise IncomeAlreadyPublished(
                    f"fund {fund_id} published {existing[0]} per 10,000 units for {income_date}; "
                    f"a different figure ({income}) is refused", fund_id=fund_id, date=income_date.isoformat(),
                    published=str(existing[0]), requested=str(income))
            return False
        _check_order(conn, fund_id, income_date)
        conn.execute("insert into ledger.fund_incomes (fund_id, income_date, income_per_10k) values (%s, %s, %s)",
                     (fund_id, income_date, income))
    return True


def _check_order(conn: psycopg.Connection[Any], fund_id: str, income_date: date) -> None:
    """A day's income counts the previous days' income, so those must be published and paid out."""
    row = conn.execute(
        """select i.income_date, r.income_date is not null
             from ledger.fund_incomes i
             left join ledger.fund_income_runs r using (fund_id, income_date)
            where i.fund_id = %s order by i.income_date desc limit 1""", (fund_id,)).fetchone()
    if row is None:
        return
    latest, finished = row
    if latest > income_date:
        raise IncomeOutOfOrder(
            f"fund {fund_id} has published income up to {latest}; {income_date} comes too late",
            fund_id=fund_id, latest=latest.isoformat())
    if not finished:
        raise IncomeOutOfOrder(
            f"the distribution of fund {fund_id}'s income for {latest} is unfinished; publish that day "
            f"again to finish it first", fund_id=fund_id, latest=latest.isoformat())


def _post_incomes(
    conn: psycopg.Connection[Any], fund_id: str, income_date: date, income: Decimal,
    incomes: Sequence[HolderIncome], progress_out: TextIO | None,
) -> int:
    requests = [
        _income_transfer(fund_id, income_date, income, number, incomes[start:start + holders_per_transaction_max])
        for number, start in enumerate(range(0, len(incomes), holders_per_transaction_max))]
    progress = Progress(progress_out, len(incomes), f"fund {fund_id} income {income_date}")
    for start in range(0, len(requests), transactions_per_call):
        chunk = requests[start:start + transactions_per_call]
        post(conn, chunk)
        progress.advance(sum(len(r.legs) - 1 for r in chunk))
    progress.finish()
    return len(requests)


def _income_transfer(
    fund_id: str, income_date: date, income: Decimal, number: int, holders: Sequence[HolderIncome],
) -> Transfer:
    total_fen = sum(h.income_fen for h in holders)
    legs = [Leg(units_account(fund_id), Side.DEBIT, total_fen)]
    legs.extend(Leg(h.account_code, Side.CREDIT, h.income_fen) for h in holders)
    return Transfer(
        f"fund.income:{fund_id}:{income_date.isoformat()}:{number}", "fund.income", legs,
        description=f"Fund {fund_id} income for {income_date} at {income} per 10,000 units",
        effective_at=calendar.day_end(income_date),
        metadata={"fund_id": fund_id, "date": income_date.isoformat(), "income_per_10k": str(income),
                  "batch": number})
