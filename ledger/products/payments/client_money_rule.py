"""The client-money rule: reserves at the banks cover the client liabilities, and the
end-of-day sweep between own funds and a bank's reserve that restores it for a business day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from ledger import calendar
from ledger.accounts import Side
from ledger.balances import rollup
from ledger.errors import ValidationError
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products.payments.common import (
    CLIENT_MONEY_LIABILITIES,
    RESERVES,
    advisory_lock,
    atomic,
    bank_accounts,
    parse_bank,
    parse_key,
    record_step,
    replayed_step,
    signed_leg,
)


@dataclass(frozen=True)
class ClientMoney:
    as_of: datetime | None
    currency: str
    reserves_fen: int
    wallets_fen: int
    merchants_fen: int
    suppliers_fen: int
    fund_subscriptions_fen: int

    @property
    def liabilities_fen(self) -> int:
        return self.wallets_fen + self.merchants_fen + self.suppliers_fen + self.fund_subscriptions_fen

    @property
    def difference_fen(self) -> int:
        """Reserves minus client liabilities: positive is own money in the reserves, negative
        a shortfall; the end-of-day sweep brings it to zero."""
        return self.reserves_fen - self.liabilities_fen


@dataclass(frozen=True)
class Sweep:
    transaction_id: int | None  # None when the rule already held
    replayed: bool
    bank: str
    date: date
    amount_fen: int  # positive: own funds into the reserve; negative: out of it
    effective_at: datetime  # of the sweep's transaction (or when it found nothing to move)


def client_money(conn: psycopg.Connection[Any], *, as_of: datetime | None = None) -> ClientMoney:
    """The reserves against the client liabilities they must cover, as of an effective time."""
    if as_of is not None and as_of.tzinfo is None:
        raise ValidationError("asOf must carry a UTC offset", field="asOf")

    def total(prefix: str) -> int:
        return sum(m.amount_minor for m in rollup(conn, prefix, as_of=as_of) if m.currency == chart.currency)

    wallets, merchants, suppliers, subscriptions = (total(p) for p in CLIENT_MONEY_LIABILITIES)
    return ClientMoney(as_of, chart.currency, total(RESERVES), wallets, merchants, suppliers, subscriptions)


def sweep_client_money(conn: psycopg.Connection[Any], *, idempotency_key: str, bank: str, day: date
                       ) -> Sweep:
    """End-of-day sweep: move the client-money difference between own funds and the bank's
    reserve, so reserves equal client liabilities at the end of business day `day`, or now
    when the day is today. Dr own funds / Cr reserve for an excess, the opposite for a shortfall.
    """
    idempotency_key = parse_key(idempotency_key)
    bank = parse_bank(bank)
    if not isinstance(day, date) or isinstance(day, datetime):
        raise ValidationError(f"date must be a calendar date, got {day!r}", field="date")

    def work() -> Sweep:
        # One sweep at a time: two at once would both move the same difference.
        advisory_lock(conn, "sweep", "client_money")
        _, reserve = bank_accounts(conn, bank)
        replayed_id = replayed_step(conn, idempotency_key, "sweep", bank=bank)
        if replayed_id is not None:
            return Sweep(replayed_id, True, bank, day, signed_leg(conn, replayed_id, reserve.id),
                         _effective_at(conn, replayed_id))
        effective_at, backdated = _sweep_time(conn, day)
        difference = client_money(conn, as_of=effective_at if backdated else None).difference_fen
        if difference == 0:
            return Sweep(None, False, bank, day, 0, effective_at)
        chart.ensure_platform_accounts(conn)
        into_reserve = -difference
        legs = [Leg(reserve.code, Side.DEBIT, into_reserve), Leg(chart.OWN_FUNDS, Side.CREDIT, into_reserve)] \
            if into_reserve > 0 else \
            [Leg(chart.OWN_FUNDS, Side.DEBIT, difference), Leg(reserve.code, Side.CREDIT, difference)]
        posted = post(conn, [Transfer(
            idempotency_key, "payment.sweep", legs, description=f"Client-money sweep for {day} via {bank}",
            effective_at=effective_at if backdated else None, metadata={"bank": bank, "date": day.isoformat()})])[0]
        record_step(conn, posted.transaction_id, "sweep", bank=bank)
        return Sweep(posted.transaction_id, False, bank, day, into_reserve, _effective_at(conn, posted.transaction_id))

    return atomic(conn, work)


def _effective_at(conn: psycopg.Connection[Any], transaction_id: int) -> datetime:
    row = conn.execute("select effective_at from ledger.transactions where id = %s", (transaction_id,)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _sweep_time(conn: psycopg.Connection[Any], day: date) -> tuple[datetime, bool]:
    """The last instant of business day `day`, and whether that is in the past (a backdated sweep)."""
    row = conn.execute("select clock_timestamp()").fetchone()
    assert row is not None
    now: datetime = row[0]
    if day > calendar.business_date(now):
        raise ValidationError(f"cannot sweep {day} before it has begun", field="date")
    end = calendar.day_end(day) - timedelta(microseconds=1)
    return (end, True) if end < now else (now, False)
