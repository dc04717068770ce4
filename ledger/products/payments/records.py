"""A payment read from the journal: its hold, the transaction that resolved it and the steps
the product linked to it in `ledger.payment_steps`; never a stored figure.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from ledger.cursors import decode_cursor, encode_cursor
from ledger.database_transaction import is_distributed
from ledger.errors import ValidationError
from ledger.products.payments.common import MERCHANT_FEE_INCOME, PaymentNotFound, page_size_max, parse_payment_id


class PaymentStatus(enum.Enum):
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    VOIDED = "VOIDED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class Payment:
    id: int
    customer_id: str
    merchant_id: str
    status: PaymentStatus
    currency: str
    authorized_fen: int
    captured_fen: int
    refunded_fen: int
    fee_fen: int
    fee_refunded_fen: int
    charged_back_fen: int
    fee_rate: Decimal
    refund_fee_pro_rata: bool
    hold_id: int
    capture_id: int | None  # the transaction that posted the hold
    expires_at: datetime | None
    created_at: datetime

    @property
    def refundable_fen(self) -> int:
        return self.captured_fen - self.refunded_fen - self.charged_back_fen


@dataclass(frozen=True)
class PaymentStep:
    """The payment after a step, and the step's transaction (the first one of a batch)."""

    payment: Payment
    transaction_id: int
    replayed: bool


@dataclass(frozen=True)
class PaymentPage:
    payments: tuple[Payment, ...]
    end_cursor: str | None
    has_next_page: bool


# Each payment with what the journal holds of it; the caller appends which (_payments_sql).
_PAYMENTS_SQL = """
select p.id, p.customer_id, p.merchant_id, p.hold_id, p.fee_rate, p.refund_fee_pro_rata, p.created_at,
       h.expires_at, h.expires_at is not null and h.expires_at <= clock_timestamp() as expired,
       held.amount, held.currency, r.id as resolved_by, r.hold_action,
       coalesce(cap.amount, 0), coalesce(st.fee, 0), coalesce(st.refunded, 0),
       coalesce(st.fee_refunded, 0), coalesce(st.charged_back, 0)
  from ledger.payments p
  join ledger.transactions h on h.id = p.hold_id
  cross join lateral (
      select sum(e.amount) as amount, min(e.currency) as currency
        from ledger.entries e where e.transaction_id = p.hold_id and e.side = 'debit') held
  left join ledger.transactions r on r.resolves_hold_id = p.hold_id
  left join lateral (
      select sum(e.amount) as amount from ledger.entries e
       where e.transaction_id = r.id and r.hold_action = 'post' and e.layer = 'posted' and e.side = 'debit') cap
    on true
  left join lateral (
      -- Each step's legs are built by this module: the fee's one credit is the fee, a refund's
      -- one credit is the wallet's, its debit on fee income the fee given back, a chargeback's
      -- one debit the receivable.
      select sum(e.amount) filter (where s.step = 'fee' and e.side = 'credit') as fee,
             sum(e.amount) filter (where s.step = 'refund' and e.side = 'credit') as refunded,
             sum(e.amount) filter (where s.step = 'refund' and e.side = 'debit'
                                     and e.account_id = fee_income.id) as fee_refunded,
             sum(e.amount) filter (where s.step = 'chargeback' and e.side = 'debit') as charged_back
        from ledger.payment_steps s
        join ledger.entries e on e.transaction_id = s.transaction_id
        left join ledger.accounts fee_income on fee_income.code = %(fee_income)s
       where s.payment_id = p.id and s.step in ('fee', 'refund', 'chargeback')) st on true
"""
# On a Citus cluster (docs/scale-out.md) the entries are distributed by account, and a subquery
# over them per payment (a reference table) cannot be planned: there the payments picked by
# {selection} (a filter, and an order and limit for a page) have the legs of their transactions
# (hold, capture, steps) read by one statement over the list of those transaction ids. On one
# server the subqueries above stay: one index probe each, where the planner would scan the
# journal for the list when it misjudges a page's size.
_PAYMENTS_CLUSTER_SQL = """
with p as (
    select p.*, r.id as resolved_by, r.hold_action
      from (select p.* from ledger.payments p {selection}) p
      left join ledger.transactions r on r.resolves_hold_id = p.hold_id),
steps as (
    select s.payment_id, s.step, s.transaction_id
      from ledger.payment_steps s
     where s.payment_id in (select p.id from p) and s.step in ('fee', 'refund', 'chargeback')),
legs as (
    select e.transaction_id, e.account_id, e.side, e.layer, e.amount, e.currency
      from ledger.entries e
     where e.transaction_id in (select p.hold_id from p
                                union all select p.resolved_by from p where p.hold_action = 'post'
                                union all select s.transaction_id from steps s))
select p.id, p.customer_id, p.merchant_id, p.hold_id, p.fee_rate, p.refund_fee_pro_rata, p.created_at,
       h.expires_at, h.expires_at is not null and h.expires_at <= clock_timestamp() as expired,
       held.amount, held.currency, p.resolved_by, p.hold_action,
       coalesce(cap.amount, 0), coalesce(st.fee, 0), coalesce(st.refunded, 0),
       coalesce(st.fee_refunded, 0), coalesce(st.charged_back, 0)
  from p
  join ledger.transactions h on h.id = p.hold_id
  left join (select l.transaction_id, sum(l.amount) as amount, min(l.currency) as currency
               from legs l where l.side = 'debit'
              group by l.transaction_id) held on held.transaction_id = p.hold_id
  left join (select l.transaction_id, sum(l.amount) as amount
               from legs l where l.layer = 'posted' and l.side = 'debit'
              group by l.transaction_id) cap on cap.transaction_id = p.resolved_by and p.hold_action = 'post'
  left join (
      -- Each step's legs are built by this module: the fee's one credit is the fee, a refund's
      -- one credit is the wallet's, its debit on fee income the fee given back, a chargeback's
      -- one debit the receivable.
      select s.payment_id,
             sum(e.amount) filter (where s.step = 'fee' and e.side = 'credit') as fee,
             sum(e.amount) filter (where s.step = 'refund' and e.side = 'credit') as refunded,
             sum(e.amount) filter (where s.step = 'refund' and e.side = 'debit'
                                     and e.account_id = fee_income.id) as fee_refunded,
             sum(e.amount) filter (where s.step = 'chargeback' and e.side = 'debit') as charged_back
        from steps s
        join legs e on e.transaction_id = s.transaction_id
        left join ledger.accounts fee_income on fee_income.code = %(fee_income)s
       group by s.payment_id) st on st.payment_id = p.id
"""


def _payments_sql(conn: psycopg.Connection[Any], selection: str, *, order: str = "") -> str:
    """The payments query: `selection` filters `ledger.payments p` (and limits a page, in `order`)."""
    if is_distributed(conn):
        return f"{_PAYMENTS_CLUSTER_SQL.replace('{selection}', selection)} {order}"
    return f"{_PAYMENTS_SQL} {selection}"


def get_payments(conn: psycopg.Connection[Any], ids: Sequence[int]) -> dict[int, Payment]:
    """Payments by id, each derived from the journal, in one query (for pages and loaders)."""
    rows = conn.execute(_payments_sql(conn, "where p.id = any(%(ids)s)"),
                        {"ids": list(ids), "fee_income": MERCHANT_FEE_INCOME}).fetchall()
    return {row[0]: _payment_of(row) for row in rows}


def get_payment(conn: psycopg.Connection[Any], payment_id: int | str) -> Payment:
    payment_id = parse_payment_id(payment_id)
    found = get_payments(conn, [payment_id]).get(payment_id)
    if found is None:
        raise PaymentNotFound(f"no payment {payment_id}", payment_id=payment_id)
    return found


_PAGE_SELECTION = """
         where (%(customer)s::text is null or p.customer_id = %(customer)s)
           and (%(merchant)s::text is null or p.merchant_id = %(merchant)s)
           and (%(party)s::text is null or %(party)s in (p.customer_id, p.merchant_id))
           and (%(before)s::bigint is null or p.id < %(before)s)
         order by p.id desc limit %(limit)s"""


def list_payments(
    conn: psycopg.Connection[Any], *, customer_id: str | None = None, merchant_id: str | None = None,
    party_id: str | None = None, first: int = 100, after: str | None = None,
) -> PaymentPage:
    """Payments newest first, optionally of one customer and/or merchant, and/or where `party_id`
    is either side (what a holder may see); keyset on the id."""
    if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= page_size_max:
        raise ValidationError(f"first must be between 0 and {page_size_max}, got {first!r}", field="first")
    before_id = decode_cursor(after, fields={"id": int})["id"] if after is not None else None
    rows = conn.execute(
        _payments_sql(conn, _PAGE_SELECTION, order="order by p.id desc"),
        {"customer": customer_id, "merchant": merchant_id, "party": party_id, "before": before_id, "limit": first + 1,
         "fee_income": MERCHANT_FEE_INCOME}).fetchall()
    payments = tuple(_payment_of(row) for row in rows[:first])
    end_cursor = encode_cursor({"id": payments[-1].id}) if payments else None
    return PaymentPage(payments, end_cursor, len(rows) > first)


def _payment_of(row: Sequence[Any]) -> Payment:
    (pid, customer, merchant, hold_id, fee_rate, pro_rata, created_at, expires_at, expired, authorized,
     currency, resolved_by, action, captured, fee, refunded, fee_refunded, charged_back) = row
    if action == "void":
        status = PaymentStatus.VOIDED
    elif action == "post":
        status = (PaymentStatus.CAPTURED if refunded == 0 else
                  PaymentStatus.REFUNDED if refunded >= captured else PaymentStatus.PARTIALLY_REFUNDED)
    else:
        status = PaymentStatus.EXPIRED if expired else PaymentStatus.AUTHORIZED
    return Payment(pid, customer, merchant, status, currency, int(authorized), int(captured), int(refunded),
                   int(fee), int(fee_refunded), int(charged_back), Decimal(fee_rate), bool(pro_rata), hold_id,
                   resolved_by if action == "post" else None, expires_at, created_at)


def lock_payment(conn: psycopg.Connection[Any], payment_id: int) -> Payment:
    row = conn.execute("select id from ledger.payments where id = %s for update", (payment_id,)).fetchone()
    if row is None:
        raise PaymentNotFound(f"no payment {payment_id}", payment_id=payment_id)
    return get_payment(conn, payment_id)
