"""Idle-funds yield: a money-market fund on customers' wallet balances.

The platform distributes the fund and keeps its customers' units in one nominee account at the
fund, so its books carry the units as a client asset mirrored by one holding per customer (one
unit = one fen: a money-market fund's price is fixed at 1). Per fund F:

    assets:fund_units:F                  units of F held for customers (nominee account); equals
                                         the sum of the holdings below at every posting
    liabilities:fund_holdings:F:U        customer U's units of F (holder_id U, never below zero)
    liabilities:fund_subscriptions_owed:F  subscription cash collected, owed to the fund manager
    assets:fund_receivable:F             redemptions the platform pre-funded, owed back by the fund

Lifecycle, one balanced transaction each:

    subscribe A   Dr wallet:U A / Cr subscriptions_owed:F A ; Dr fund_units:F A / Cr holding:F:U A
    redeem A      Dr holding:F:U A / Cr fund_units:F A ; Dr receivable:F A / Cr wallet:U A
                  (T+0: the wallet is paid at once, before the fund pays; the platform's end-of-day
                  sweep of own funds into the client-money reserve pre-funds it)
    settle        Dr subscriptions_owed:F S / Cr receivable:F R / Cr (or Dr) reserve:bank S - R
                  (the net cash exchanged with the fund manager)
    income for D  Dr fund_units:F / Cr holding:F:U floor(balance x R / 10000), see fund_income.py

Income is new units, so it never touches the platform's profit and loss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import class_row

from ledger import calendar
from ledger.accounts import AccountType, Side, get_account
from ledger.balances import balances_now
from ledger.database_transaction import database_transaction
from ledger.errors import AccountNotFound, InsufficientFunds, LedgerError, ValidationError
from ledger.journal import get_transaction_by_key
from ledger.money import parse_amount
from ledger.posting import Leg, Transfer, key_length_max, post_one
from ledger.products import chart
from ledger.products.effective import business_day_of, parse_effective_at
from ledger.products.fund_math import (
    income_per_10k_decimals_max,
    parse_income_per_10k,
    seven_day_yield_percent,
    yield_window_days,
)
from ledger.text import check_label, check_text

__all__ = [
    "figures_days_max",
    "income_history_page_max",
    "FundNotFound",
    "FundExists",
    "IncomeAlreadyPublished",
    "IncomeOutOfOrder",
    "IncomeFiguresMissing",
    "HoldingNotFound",
    "FundDayDistributed",
    "income_lock_class",
    "Fund",
    "FundMovement",
    "FundSettlement",
    "IncomeFigure",
    "HoldingIncome",
    "Holding",
    "units_account",
    "holding_account",
    "subscriptions_owed_account",
    "receivable_account",
    "holdings_prefix",
    "create_fund",
    "get_fund",
    "subscribe",
    "redeem",
    "settle",
    "parse_income",
    "income_figures",
    "seven_day_yield",
    "holders_total",
    "holding",
    "income_history",
]

figures_days_max = 366
income_lock_class = 7260060  # advisory lock class of a fund's income pass (object id: the fund's row id)
income_history_page_max = 100
name_length_max = 200
_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_CUSTOMER = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class FundNotFound(LedgerError):
    code = "FUND_NOT_FOUND"


class FundExists(LedgerError):
    """A fund with this id exists under another name."""

    code = "FUND_EXISTS"


class IncomeAlreadyPublished(LedgerError):
    """The fund's income for this date was published with a different figure."""

    code = "INCOME_ALREADY_PUBLISHED"


class IncomeOutOfOrder(LedgerError):
    """Income compounds daily, so days are published in order and each distribution finishes first."""

    code = "INCOME_OUT_OF_ORDER"


class IncomeFiguresMissing(LedgerError):
    """A 7-day yield needs the published figure of each of the 7 days."""

    code = "INCOME_FIGURES_MISSING"


class HoldingNotFound(LedgerError):
    code = "HOLDING_NOT_FOUND"


class FundDayDistributed(LedgerError):
    """The fund's income for the operation's business day is already published: a subscription or
    redemption dated in it would change a day-end balance income was paid on."""

    code = "FUND_DAY_DISTRIBUTED"


@dataclass(frozen=True)
class Fund:
    id: int
    fund_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class FundMovement:
    """A subscription or redemption as posted."""

    transaction_id: int
    replayed: bool
    fund_id: str
    customer_id: str
    amount_fen: int


@dataclass(frozen=True)
class FundSettlement:
    transaction_id: int | None  # None when nothing was outstanding
    replayed: bool
    subscriptions_fen: int
    redemptions_fen: int


@dataclass(frozen=True)
class IncomeFigure:
    income_date: date
    income_per_10k: Decimal
    seven_day_yield_percent: Decimal | None  # None unless all 7 days up to this one are published


@dataclass(frozen=True)
class HoldingIncome:
    income_date: date
    income_fen: int
    transaction_id: int
    account_version: int  # keyset cursor of the history


@dataclass(frozen=True)
class Holding:
    fund_id: str
    customer_id: str
    account_id: int
    account_code: str
    balance_fen: int


def units_account(fund_id: str) -> str:
    return f"assets:fund_units:{fund_id}"


def subscriptions_owed_account(fund_id: str) -> str:
    return f"liabilities:fund_subscriptions_owed:{fund_id}"


def receivable_account(fund_id: str) -> str:
    return f"assets:fund_receivable:{fund_id}"


def holdings_prefix(fund_id: str) -> str:
    return f"liabilities:fund_holdings:{fund_id}"


def holding_account(fund_id: str, customer_id: str) -> str:
    return f"{holdings_prefix(fund_id)}:{customer_id}"


def _fund_id(value: object) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValidationError(f"fundId must be 1 to 40 letters, digits or _ . -, got {value!r}", field="fundId")
    return value


def _customer_id(value: object) -> str:
    if not isinstance(value, str) or not _CUSTOMER.fullmatch(value):
        raise ValidationError(
            f"customerId must be 1 to 100 letters, digits or _ . -, got {value!r}", field="customerId")
    return value


def parse_income(value: object) -> Decimal:
    """The published income per 10,000 units, as a decimal string (or Decimal) of up to 4 places."""
    text = str(value) if isinstance(value, Decimal) else value
    try:
        return parse_income_per_10k(text)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValidationError(
            f"incomePer10k must be a decimal such as '1.7807' (at most {income_per_10k_decimals_max} "
            f"decimals): {exc}", field="incomePer10k") from None


# Funds ------------------------------------------------------------------------------------------

def create_fund(conn: psycopg.Connection[Any], fund_id: str, name: str) -> tuple[Fund, bool]:
    """Create the fund and its accounts; the same id and name again returns it (created=False)."""
    fund_id = _fund_id(fund_id)
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= name_length_max:
        raise ValidationError(f"name must be 1 to {name_length_max} characters", field="name")
    check_label(name, "name")
    with database_transaction(conn):
        with conn.cursor(row_factory=class_row(Fund)) as cur:
            created = cur.execute(
                """insert into ledger.funds (fund_id, name) values (%s, %s)
                   on conflict (fund_id) do nothing returning id, fund_id, name, created_at""",
                (fund_id, name)).fetchone()
        fund = created or get_fund(conn, fund_id)
        if fund.name != name:
            raise FundExists(f"fund {fund_id} exists with the name {fund.name!r}", fund_id=fund_id)
        chart.ensure(conn, units_account(fund_id), f"Units of fund {fund_id} held for customers",
                     AccountType.ASSET, min_balance=0)
        chart.ensure(conn, subscriptions_owed_account(fund_id), f"Subscriptions owed to fund {fund_id}",
                     AccountType.LIABILITY, min_balance=0)
        chart.ensure(conn, receivable_account(fund_id), f"Redemptions pre-funded, receivable from fund {fund_id}",
                     AccountType.ASSET, min_balance=0)
    return fund, created is not None


def get_fund(conn: psycopg.Connection[Any], fund_id: str) -> Fund:
    with conn.cursor(row_factory=class_row(Fund)) as cur:
        fund = cur.execute("select id, fund_id, name, created_at from ledger.funds where fund_id = %s",
                           (_fund_id(fund_id),)).fetchone()
    if fund is None:
        raise FundNotFound(f"no fund {fund_id}", fund_id=fund_id)
    return fund


# Subscriptions and redemptions -------------------------------------------------------------------

def _key(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= key_length_max:
        raise ValidationError(f"idempotencyKey must be 1 to {key_length_max} characters", field="idempotencyKey")
    return check_text(value, "idempotencyKey")


def _check_day_open(conn: psycopg.Connection[Any], fund: Fund, effective_at: datetime | None, key: str) -> None:
    """Refuse a movement dated in a day whose income is published. A day not yet ended cannot be
    (publish_income waits for its end), so only a backdated one looks; it first waits for an
    income pass under way, whose lock it shares. A key already used is the core's to judge
    (a replay, or a conflict)."""
    day = business_day_of(effective_at)
    if day >= calendar.today() or get_transaction_by_key(conn, key) is not None:
        return
    conn.execute("select pg_advisory_xact_lock_shared(%s, %s)", (income_lock_class, fund.id))
    row = conn.execute("select max(income_date) from ledger.fund_incomes where fund_id = %s",
                       (fund.fund_id,)).fetchone()
    published = None if row is None else row[0]
    if published is not None and day <= published:
        raise FundDayDistributed(
            f"fund {fund.fund_id} has published its income up to {published}; an operation dated {day} would "
            f"change a balance that income was paid on", fund_id=fund.fund_id, day=day.isoformat(),
            published=published.isoformat())


def _ensure_holding(conn: psycopg.Connection[Any], fund_id: str, customer_id: str) -> str:
    code = holding_account(fund_id, customer_id)
    chart.ensure(conn, code, f"Fund {fund_id} units of {customer_id}", AccountType.LIABILITY,
                 holder_id=customer_id, min_balance=0)
    return code


def _posted_balance(conn: psycopg.Connection[Any], code: str) -> int:
    account = get_account(conn, code)
    return balances_now(conn, [account.id])[account.id].posted


def _holding_code(conn: psycopg.Connection[Any], fund_id: str, customer_id: str) -> str:
    try:
        return get_account(conn, holding_account(fund_id, customer_id)).code
    except AccountNotFound:
        raise HoldingNotFound(f"customer {customer_id} has never held fund {fund_id}",
                              customer_id=customer_id, fund_id=fund_id) from None


def subscribe(
    conn: psycopg.Connection[Any], *, idempotency_key: str, customer_id: str, fund_id: str, amount_fen: int,
    effective_at: datetime | None = None,
) -> FundMovement:
    """Buy units with wallet money; the wallet may not go below zero (InsufficientFunds).

    effective_at (default now) dates it, under the rules of ledger/products/effective.py, on a
    business day whose income the fund has not published yet (FundDayDistributed).
    """
    customer_id, amount_fen = _customer_id(customer_id), parse_amount(amount_fen)
    idempotency_key, effective_at = _key(idempotency_key), parse_effective_at(effective_at)
    fund = get_fund(conn, fund_id)
    wallet = get_account(conn, chart.wallet(customer_id)).code  # AccountNotFound for unknown customers
    # One transaction, so a refused subscription leaves no empty holding behind.
    with database_transaction(conn):
        _check_day_open(conn, fund, effective_at, idempotency_key)
        holding = _ensure_holding(conn, fund.fund_id, customer_id)
        posted = post_one(conn, Transfer(
            idempotency_key, "fund.subscribe",
            [Leg(wallet, Side.DEBIT, amount_fen),
             Leg(subscriptions_owed_account(fund.fund_id), Side.CREDIT, amount_fen),
             Leg(units_account(fund.fund_id), Side.DEBIT, amount_fen), Leg(holding, Side.CREDIT, amount_fen)],
            description=f"Subscribe {amount_fen} fen to fund {fund.fund_id}", effective_at=effective_at,
            metadata={"fund_id": fund.fund_id, "customer_id": customer_id}))
    return FundMovement(posted.transaction_id, posted.replayed, fund.fund_id, customer_id, amount_fen)


def redeem(
    conn: psycopg.Connection[Any], *, idempotency_key: str, customer_id: str, fund_id: str, amount_fen: int,
    effective_at: datetime | None = None,
) -> FundMovement:
    """Sell units back to the wallet at once (T+0); never more than the holding (InsufficientFunds).

    effective_at dates it as a subscription's (see `subscribe`).
    """
    customer_id, amount_fen = _customer_id(customer_id), parse_amount(amount_fen)
    idempotency_key, effective_at = _key(idempotency_key), parse_effective_at(effective_at)
    fund = get_fund(conn, fund_id)
    wallet = get_account(conn, chart.wallet(customer_id)).code
    holding = _holding_code(conn, fund.fund_id, customer_id)
    try:
        with database_transaction(conn):
            _check_day_open(conn, fund, effective_at, idempotency_key)
            posted = post_one(conn, Transfer(
                idempotency_key, "fund.redeem",
                [Leg(holding, Side.DEBIT, amount_fen), Leg(units_account(fund.fund_id), Side.CREDIT, amount_fen),
                 Leg(receivable_account(fund.fund_id), Side.DEBIT, amount_fen), Leg(wallet, Side.CREDIT, amount_fen)],
                description=f"Redeem {amount_fen} fen from fund {fund.fund_id} (T+0)", effective_at=effective_at,
                metadata={"fund_id": fund.fund_id, "customer_id": customer_id}))
    except InsufficientFunds as exc:
        # The core may name the nominee account (both fall short together); name the holding.
        held = _posted_balance(conn, holding)
        raise InsufficientFunds(
            f"customer {customer_id} holds {held} fen of fund {fund.fund_id}, {amount_fen} requested",
            account=holding, available=held, requested=amount_fen) from exc
    return FundMovement(posted.transaction_id, posted.replayed, fund.fund_id, customer_id, amount_fen)


def settle(conn: psycopg.Connection[Any], *, idempotency_key: str, fund_id: str, bank: str) -> FundSettlement:
    """Exchange the net cash with the fund manager through a client-money reserve: remit every
    subscription owed and recover every pre-funded redemption, in one transaction."""
    fund = get_fund(conn, fund_id)
    reserve = get_account(conn, chart.bank_reserve(bank)).code
    owed_code, receivable_code = subscriptions_owed_account(fund.fund_id), receivable_account(fund.fund_id)
    with database_transaction(conn):
        # Lock both, one statement each in id order like the core, so the amounts read are the
        # amounts posted. By the account key: a Citus cluster locks rows only where a statement
        # names its shard (docs/scale-out.md).
        balance: dict[str, int] = {}
        for account in sorted((get_account(conn, owed_code), get_account(conn, receivable_code)),
                              key=lambda a: a.id):
            row = conn.execute(
                """select b.posted_debits - b.posted_credits from ledger.balances b
                    where b.account_id = %s for update""", (account.id,)).fetchone()
            assert row is not None, "create_fund made the fund's accounts"
            balance[account.code] = int(row[0]) if account.normal_side == "debit" else -int(row[0])
        owed, receivable = balance[owed_code], balance[receivable_code]
        legs = [Leg(code, side, amount) for code, side, amount in (
            (owed_code, Side.DEBIT, owed), (receivable_code, Side.CREDIT, receivable),
            (reserve, Side.CREDIT if owed > receivable else Side.DEBIT, abs(owed - receivable))) if amount > 0]
        if len(legs) < 2:
            return FundSettlement(None, False, 0, 0)
        posted = post_one(conn, Transfer(
            idempotency_key, "fund.settle", legs,
            description=f"Settle with fund {fund.fund_id}: subscriptions {owed}, redemptions {receivable}",
            metadata={"fund_id": fund.fund_id, "subscriptions_fen": owed, "redemptions_fen": receivable}))
    return FundSettlement(posted.transaction_id, posted.replayed, owed, receivable)


# Queries ----------------------------------------------------------------------------------------

def income_figures(
    conn: psycopg.Connection[Any], fund_id: str, date_from: date, date_to: date,
) -> list[IncomeFigure]:
    """Published figures of the days from date_from to date_to, each with its 7-day yield."""
    fund = get_fund(conn, fund_id)
    if date_to < date_from or (date_to - date_from).days >= figures_days_max:
        raise ValidationError(
            f"the range must run forward and span at most {figures_days_max} days, got {date_from}..{date_to}",
            field="to")
    rows = conn.execute(
        """select income_date, income_per_10k from ledger.fund_incomes
            where fund_id = %s and income_date between %s and %s order by income_date""",
        (fund.fund_id, date_from - timedelta(days=yield_window_days - 1), date_to)).fetchall()
    by_day: dict[date, Decimal] = {row[0]: row[1] for row in rows}
    return [IncomeFigure(day, income, _yield_of(by_day, day))
            for day, income in by_day.items() if day >= date_from]


def _window(day: date) -> list[date]:
    return [day - timedelta(days=back) for back in range(yield_window_days - 1, -1, -1)]


def _yield_of(by_day: dict[date, Decimal], day: date) -> Decimal | None:
    window = _window(day)
    if not all(d in by_day for d in window):
        return None
    return seven_day_yield_percent([by_day[d] for d in window])


def seven_day_yield(conn: psycopg.Connection[Any], fund_id: str, on: date) -> Decimal:
    """The annualized 7-day yield in percent (3 decimals) from the figures of the 7 days ending on `on`."""
    fund = get_fund(conn, fund_id)
    window = _window(on)
    rows = conn.execute(
        """select income_date, income_per_10k from ledger.fund_incomes
            where fund_id = %s and income_date between %s and %s""",
        (fund.fund_id, window[0], window[-1])).fetchall()
    by_day: dict[date, Decimal] = {row[0]: row[1] for row in rows}
    missing = [d.isoformat() for d in window if d not in by_day]
    if missing:
        raise IncomeFiguresMissing(
            f"fund {fund.fund_id} has no published income for {', '.join(missing)}; the 7-day yield "
            f"on {on} needs the {yield_window_days} days ending on it", missing=missing)
    result = _yield_of(by_day, on)
    assert result is not None
    return result


def holders_total(conn: psycopg.Connection[Any], fund_id: str) -> int:
    """Units held by all customers: the nominee account, which mirrors the sum of the holdings."""
    fund = get_fund(conn, fund_id)
    return _posted_balance(conn, units_account(fund.fund_id))


def holding(conn: psycopg.Connection[Any], customer_id: str, fund_id: str) -> Holding:
    customer_id = _customer_id(customer_id)
    fund = get_fund(conn, fund_id)
    code = holding_account(fund.fund_id, customer_id)
    row = conn.execute(
        """select a.id, b.posted_credits - b.posted_debits
             from ledger.accounts a join ledger.balances b on b.account_id = a.id where a.code = %s""",
        (code,)).fetchone()
    if row is None:
        raise HoldingNotFound(f"customer {customer_id} has never held fund {fund.fund_id}",
                              customer_id=customer_id, fund_id=fund.fund_id)
    return Holding(fund.fund_id, customer_id, int(row[0]), code, int(row[1]))


def income_history(
    conn: psycopg.Connection[Any], customer_id: str, fund_id: str, *, limit: int = 30,
    before_version: int | None = None,
) -> list[HoldingIncome]:
    """The holding's daily income, newest first; page on with the last item's account_version."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= income_history_page_max:
        raise ValidationError(f"first must be between 1 and {income_history_page_max}", field="first")
    found = holding(conn, customer_id, fund_id)
    rows = conn.execute(
        """select (t.metadata ->> 'date')::date, e.amount, e.transaction_id, e.account_version
             from ledger.entries e join ledger.transactions t on t.id = e.transaction_id
            where e.account_id = %(account)s and t.kind = 'fund.income'
              and (%(before)s::bigint is null or e.account_version < %(before)s)
            order by e.account_version desc limit %(limit)s""",
        {"account": found.account_id, "before": before_version, "limit": limit}).fetchall()
    return [HoldingIncome(row[0], int(row[1]), int(row[2]), int(row[3])) for row in rows]
