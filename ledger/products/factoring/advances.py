"""Advancing on an invoice: a share of what is unpaid, paid from own funds into the advance's
own principal account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ledger import calendar
from ledger.accounts import AccountType, Side
from ledger.database_transaction import database_transaction
from ledger.errors import ValidationError
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products.factoring.common import (
    InvoiceAlreadyAssigned,
    InvoiceAlreadyPaid,
    advance_code,
    advance_rate_max,
    advance_rounding,
    daily_fee_rate_max,
    ensure_product_accounts,
    fee_code,
    parse_day,
    parse_invoice_no,
    parse_key,
    parse_rate_within,
    record_step,
    replay_of,
    step_effective_at,
)
from ledger.products.factoring.records import Advance, Invoice, advance_of_invoice, get_advance, get_invoice
from ledger.products.onboarding import parse_party_id


@dataclass(frozen=True)
class AdvanceMade:
    advance: Advance
    transaction_id: int
    replayed: bool


def advance_on_invoice(
    conn: psycopg.Connection[Any], supplier_id: str, invoice_no: str, advance_rate: str | Decimal,
    daily_fee_rate: str | Decimal, *, idempotency_key: str, advanced_on: date | None = None,
) -> AdvanceMade:
    """Advance (unpaid invoice x rate, rounded down) from own funds: Dr advance:<id> / Cr own funds."""
    supplier_id = parse_party_id(supplier_id, field="supplierId")
    invoice_no = parse_invoice_no(invoice_no)
    rate = parse_rate_within(advance_rate, "advanceRate", advance_rate_max, positive=True)
    fee_rate = parse_rate_within(daily_fee_rate, "dailyFeeRate", daily_fee_rate_max, positive=False)
    day = parse_day(advanced_on, "advancedOn", default=calendar.today())
    key = parse_key("advance", idempotency_key)
    request = {"supplier_id": supplier_id, "invoice_no": invoice_no, "advance_rate": str(rate),
               "daily_fee_rate": str(fee_rate), "advanced_on": None if advanced_on is None else day.isoformat()}
    with database_transaction(conn):
        invoice = get_invoice(conn, supplier_id, invoice_no, lock=True)
        done = replay_of(conn, key, request)
        if done is not None:
            return AdvanceMade(get_advance(conn, done["advance_id"]), done["transaction_id"], True)
        existing = advance_of_invoice(conn, invoice.id, lock=False)
        if existing is not None:
            raise InvoiceAlreadyAssigned(f"invoice {invoice_no} of {supplier_id} is already assigned to advance "
                                         f"{existing.id}", advance_id=existing.id)
        if invoice.outstanding_fen <= 0:
            raise InvoiceAlreadyPaid(f"invoice {invoice_no} of {supplier_id} is paid: nothing to advance on")
        _check_advance_day(invoice, day)
        principal_fen = advance_rounding.apply(invoice.outstanding_fen * rate)
        if principal_fen <= 0:
            raise ValidationError(f"advance of {invoice.outstanding_fen} x {rate} rounds down to nothing",
                                  field="advanceRate")
        try:
            return _make_advance(conn, invoice, principal_fen, rate, fee_rate, day, key, request)
        except pg_errors.UniqueViolation as exc:
            # The row lock makes this unreachable; the constraint is the database's own guard.
            raise InvoiceAlreadyAssigned(f"invoice {invoice_no} of {supplier_id} is already assigned") from exc


def _check_advance_day(invoice: Invoice, day: date) -> None:
    if day < invoice.issued_on:
        raise ValidationError(f"advancedOn {day} is before the invoice was issued on {invoice.issued_on}",
                              field="advancedOn")
    if day >= invoice.due_date:
        raise ValidationError(f"invoice {invoice.invoice_no} falls due on {invoice.due_date}: too late to advance "
                              f"on {day}", field="advancedOn")


def _make_advance(conn: psycopg.Connection[Any], invoice: Invoice, principal_fen: int, rate: Decimal,
                  fee_rate: Decimal, day: date, key: str, request: dict[str, Any]) -> AdvanceMade:
    row = conn.execute("select nextval(pg_get_serial_sequence('ledger.factoring_advances', 'id'))").fetchone()
    assert row is not None
    advance_id = int(row[0])
    supplier = invoice.supplier_id
    ensure_product_accounts(conn)
    principal = chart.ensure(conn, advance_code(advance_id), f"Factoring advance {advance_id} to {supplier}",
                             AccountType.ASSET, holder_id=supplier, min_balance=0)
    fees = chart.ensure(conn, fee_code(advance_id), f"Factoring fee receivable of advance {advance_id}",
                        AccountType.ASSET, holder_id=supplier, min_balance=0)
    conn.execute(
        """insert into ledger.factoring_advances (id, invoice_id, supplier_id, base_fen, principal_fen, advance_rate,
               daily_fee_rate, advanced_on, principal_account_id, fee_account_id)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (advance_id, invoice.id, supplier, invoice.outstanding_fen, principal_fen, rate, fee_rate, day,
         principal.id, fees.id))
    posted = post(conn, [Transfer(
        key, "factoring.advance",
        [Leg(advance_code(advance_id), Side.DEBIT, principal_fen), Leg(chart.OWN_FUNDS, Side.CREDIT, principal_fen)],
        description=f"Advance {advance_id} to {supplier} on invoice {invoice.invoice_no} ({rate} of "
                    f"{invoice.outstanding_fen}), paid to the supplier",
        effective_at=step_effective_at(day), metadata={"request": request, "advance_id": advance_id})])[0]
    record_step(conn, posted, "advance", invoice.id, advance_id)
    return AdvanceMade(get_advance(conn, advance_id), posted.transaction_id, False)
