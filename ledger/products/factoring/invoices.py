"""Recording a purchase invoice of the retail business: its payable to the supplier."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg

from ledger import calendar
from ledger.accounts import Side
from ledger.database_transaction import database_transaction
from ledger.errors import ValidationError
from ledger.money import parse_amount
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products.factoring.common import (
    RETAIL_INVENTORY,
    InvoiceAlreadyRecorded,
    ensure_product_accounts,
    parse_day,
    parse_invoice_no,
    parse_key,
    record_step,
    replay_of,
    step_effective_at,
)
from ledger.products.factoring.records import Invoice, get_invoice, invoice_by_id
from ledger.products.onboarding import onboard_supplier, parse_party_id

# Advisory-lock namespace (first key of the two-key form).
_INVOICE_LOCK = 7260040   # recording an invoice number of a supplier


@dataclass(frozen=True)
class InvoiceRecorded:
    invoice: Invoice
    transaction_id: int
    replayed: bool


# Recording an invoice ----------------------------------------------------------------------------

def record_purchase_invoice(
    conn: psycopg.Connection[Any], supplier_id: str, invoice_no: str, amount: int | str, due_date: date, *,
    idempotency_key: str, issued_on: date | None = None,
) -> InvoiceRecorded:
    """The retail business owes the supplier: Dr retail inventory / Cr supplier payable:S."""
    supplier_id = parse_party_id(supplier_id, field="supplierId")
    invoice_no = parse_invoice_no(invoice_no)
    amount_fen = parse_amount(amount)
    # A defaulted date stays out of the request: a retry on a later day is still the same request.
    given_issued_on = None if issued_on is None else parse_day(issued_on, "issuedOn").isoformat()
    issued_on = parse_day(issued_on, "issuedOn", default=calendar.today())
    due_date = parse_day(due_date, "dueDate", not_after_today=False)
    if due_date < issued_on:
        raise ValidationError(f"dueDate {due_date} is before the invoice was issued on {issued_on}", field="dueDate")
    key = parse_key("invoice", idempotency_key)
    request = {"supplier_id": supplier_id, "invoice_no": invoice_no, "amount_fen": amount_fen,
               "due_date": due_date.isoformat(), "issued_on": given_issued_on}
    with database_transaction(conn):
        conn.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (_INVOICE_LOCK, f"{supplier_id}/{invoice_no}"))
        done = replay_of(conn, key, request)
        if done is not None:
            return InvoiceRecorded(get_invoice(conn, supplier_id, invoice_no), done["transaction_id"], True)
        if conn.execute("select 1 from ledger.purchase_invoices where supplier_id = %s and invoice_no = %s",
                        (supplier_id, invoice_no)).fetchone():
            raise InvoiceAlreadyRecorded(f"supplier {supplier_id} already has an invoice {invoice_no}",
                                         supplier_id=supplier_id, invoice_no=invoice_no)
        onboard_supplier(conn, supplier_id)
        ensure_product_accounts(conn)
        posted = post(conn, [Transfer(
            key, "factoring.invoice",
            [Leg(RETAIL_INVENTORY, Side.DEBIT, amount_fen), Leg(chart.supplier_payable(supplier_id), Side.CREDIT, amount_fen)],
            description=f"Purchase invoice {invoice_no} of supplier {supplier_id}, due {due_date}",
            effective_at=step_effective_at(issued_on), metadata={"request": request})])[0]
        row = conn.execute(
            """insert into ledger.purchase_invoices (supplier_id, invoice_no, amount_fen, issued_on, due_date)
               values (%s, %s, %s, %s, %s) returning id""",
            (supplier_id, invoice_no, amount_fen, issued_on, due_date)).fetchone()
        assert row is not None
        record_step(conn, posted, "invoice", row[0])
        return InvoiceRecorded(invoice_by_id(conn, row[0]), posted.transaction_id, False)
