"""The demo's supply-chain finance: supplier S3001's purchase invoices, two advances, daily fees.

One invoice advanced on and still open (its fee accrued every day since), one advanced on and
paid by the retail business (fee, principal, then the remainder remitted to the supplier), one
not advanced on. Dates derive from the demo anchor and the accrual stops at the last history day,
so loading again replays and writes nothing new.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from ledger.demo.anchor import demo_anchor, history_days
from ledger.products import factoring, factoring_accrual

__all__ = ["DEMO_SUPPLIER", "load_factoring_demo"]

DEMO_SUPPLIER = "S3001"
# (invoice number, amount in fen, issued on demo day, due after days, advanced on demo day or None)
_INVOICES = (
    ("HX-2026-001", 100_000_000, 60, 90, 62),
    ("HX-2026-002", 35_000_000, 70, 40, 72),
    ("HX-2026-003", 12_500_000, 100, 60, None),
)
_PAID = "HX-2026-002"


def load_factoring_demo(conn: psycopg.Connection[Any]) -> None:
    start = demo_anchor(conn).date()
    for invoice_no, amount_fen, issued, due_after, advanced in _INVOICES:
        factoring.record_purchase_invoice(
            conn, DEMO_SUPPLIER, invoice_no, amount_fen, start + timedelta(days=issued + due_after),
            idempotency_key=f"demo:factoring:invoice:{invoice_no}", issued_on=start + timedelta(days=issued))
        if advanced is not None:
            factoring.advance_on_invoice(
                conn, DEMO_SUPPLIER, invoice_no, "0.8", "0.00025",
                idempotency_key=f"demo:factoring:advance:{invoice_no}", advanced_on=start + timedelta(days=advanced))
    first_fee_day = min(a for *_, a in _INVOICES if a is not None) + 1
    for day in range(first_fee_day, history_days):
        factoring_accrual.accrue_factoring_fees(conn, start + timedelta(days=day), progress=None)
    factoring.settle_invoice(conn, DEMO_SUPPLIER, _PAID, idempotency_key=f"demo:factoring:payment:{_PAID}")
