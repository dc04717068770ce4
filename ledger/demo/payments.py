"""The payments part of `ledger-core demo`: the demo's parties onboarded, and payments through
the product's own steps (authorize, capture in full and in part, refund with the fee pro rata,
void, an authorization left open, settlement, a chargeback netted from the next settlement) and
the end-of-day client-money sweep.

Every key is a fixed `demo:payments:` key, so loading again replays and writes nothing new (the
sweep is keyed by day: a load on a later day sweeps that day).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg

from ledger import calendar
from ledger.demo.anchor import CUSTOMERS, MERCHANTS, SUPPLIERS
from ledger.products import payments as pay
from ledger.products.onboarding import onboard_customer, onboard_merchant, onboard_supplier

__all__ = ["demo_payments"]

_KEY = "demo:payments"


def demo_payments(conn: psycopg.Connection[Any]) -> None:
    for customer in CUSTOMERS:
        onboard_customer(conn, customer)
    for number, merchant in enumerate(MERCHANTS):
        onboard_merchant(conn, merchant, "0.006", refund_fee_pro_rata=number == 0)
    for supplier in SUPPLIERS:
        onboard_supplier(conn, supplier)
    buyer, other = list(CUSTOMERS)[:2]
    shop, books = list(MERCHANTS)[:2]

    pay.top_up(conn, idempotency_key=f"{_KEY}:topup", customer_id=buyer, bank="icbc", amount_fen=100000)
    pay.settle_top_ups(conn, idempotency_key=f"{_KEY}:settle_top_ups", bank="icbc")
    pay.top_up(conn, idempotency_key=f"{_KEY}:topup:unsettled", customer_id=other, bank="cmb", amount_fen=20000)

    def authorize(name: str, customer: str, merchant: str, amount_fen: int) -> int:
        return pay.authorize_payment(conn, idempotency_key=f"{_KEY}:{name}:authorize", customer_id=customer,
                                     merchant_id=merchant, amount_fen=amount_fen).payment.id

    # The domain page's worked numbers: 29900 captured, fee 179; 9900 refunded, fee 59 back.
    worked = authorize("worked", buyer, shop, 29900)
    pay.capture_payment(conn, idempotency_key=f"{_KEY}:worked:capture", payment_id=worked)
    pay.refund_payment(conn, idempotency_key=f"{_KEY}:worked:refund", payment_id=worked, amount_fen=9900)
    partial = authorize("partial", buyer, books, 12000)
    pay.capture_payment(conn, idempotency_key=f"{_KEY}:partial:capture", payment_id=partial, amount_fen=8000)
    cancelled = authorize("cancelled", buyer, books, 3000)
    pay.void_payment(conn, idempotency_key=f"{_KEY}:cancelled:void", payment_id=cancelled)
    authorize("open", buyer, shop, 4500)

    pay.settle_merchant(conn, idempotency_key=f"{_KEY}:settle:1", merchant_id=shop, bank="icbc")
    pay.chargeback(conn, idempotency_key=f"{_KEY}:worked:chargeback", payment_id=worked, amount_fen=5000)
    later = authorize("later", buyer, shop, 2000)
    pay.capture_payment(conn, idempotency_key=f"{_KEY}:later:capture", payment_id=later)
    pay.settle_merchant(conn, idempotency_key=f"{_KEY}:settle:2", merchant_id=shop, bank="icbc")

    today = _today(conn)
    pay.sweep_client_money(conn, idempotency_key=f"{_KEY}:sweep:{today.isoformat()}", bank="icbc", day=today)


def _today(conn: psycopg.Connection[Any]) -> date:
    row = conn.execute("select clock_timestamp()").fetchone()
    assert row is not None
    now: datetime = row[0]
    return calendar.business_date(now)
