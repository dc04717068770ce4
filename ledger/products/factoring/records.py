"""Invoices and advances as the journal has them: an invoice with what was paid of it, an
advance with its balances and status (the `ledger.factoring_advance_states` view).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import class_row

from ledger import calendar
from ledger.errors import ValidationError
from ledger.products.factoring.common import (
    AdvanceNotFound,
    AdvanceNotOpen,
    InvoiceNotFound,
    page_size_max,
    parse_advance_id,
)


class AdvanceStatus:
    OPEN = "OPEN"
    SETTLED = "SETTLED"
    REPAID = "REPAID"
    DEFAULTED = "DEFAULTED"
    ALL = (OPEN, SETTLED, REPAID, DEFAULTED)


@dataclass(frozen=True)
class Invoice:
    id: int
    supplier_id: str
    invoice_no: str
    amount_fen: int
    issued_on: date
    due_date: date
    paid_fen: int

    @property
    def outstanding_fen(self) -> int:
        return self.amount_fen - self.paid_fen

    @property
    def status(self) -> str:
        return "PAID" if self.paid_fen >= self.amount_fen else "PARTIALLY_PAID" if self.paid_fen else "OPEN"


@dataclass(frozen=True)
class Advance:
    id: int
    invoice_id: int
    supplier_id: str
    invoice_no: str
    due_date: date
    base_fen: int
    principal_fen: int
    advance_rate: Decimal
    daily_fee_rate: Decimal
    advanced_on: date
    principal_outstanding_fen: int
    fee_accrued_fen: int
    fee_paid_fen: int
    fee_outstanding_fen: int
    recourse_fen: int
    status: str
    closed_on: date | None

    @property
    def outstanding_fen(self) -> int:
        return self.principal_outstanding_fen + self.fee_outstanding_fen

    def days_outstanding(self, today: date | None = None) -> int:
        return ((self.closed_on or today or calendar.today()) - self.advanced_on).days


# Reading state -----------------------------------------------------------------------------------

_INVOICE_SQL = """
select i.id, i.supplier_id, i.invoice_no, i.amount_fen, i.issued_on, i.due_date,
       coalesce((select sum((t.metadata ->> 'paid_fen')::bigint)
                   from ledger.factoring_steps st join ledger.transactions t on t.id = st.transaction_id
                  where st.invoice_id = i.id and st.step = 'payment'), 0)::bigint as paid_fen
  from ledger.purchase_invoices i
"""

# The view gives when the closing step took effect; its business date is the closing day.
_ADVANCES_SQL = """
select v.id, v.invoice_id, v.supplier_id, v.invoice_no, v.due_date, v.base_fen, v.principal_fen, v.advance_rate,
       v.daily_fee_rate, v.advanced_on, v.principal_outstanding_fen, v.fee_accrued_fen, v.fee_paid_fen,
       v.fee_outstanding_fen, v.recourse_fen, v.status, (v.closed_at at time zone %(zone)s)::date as closed_on
  from ledger.factoring_advance_states v
"""


def get_invoice(conn: psycopg.Connection[Any], supplier_id: str, invoice_no: str, *, lock: bool = False) -> Invoice:
    """The invoice with what was paid of it; `lock` takes its row until the transaction ends."""
    if lock:
        # Lock first, read after: under READ COMMITTED the second statement sees what a
        # concurrent step committed while we waited.
        conn.execute("select 1 from ledger.purchase_invoices where supplier_id = %s and invoice_no = %s for update",
                      (supplier_id, invoice_no))
    with conn.cursor(row_factory=class_row(Invoice)) as cur:
        invoice = cur.execute(_INVOICE_SQL + " where i.supplier_id = %s and i.invoice_no = %s",
                              (supplier_id, invoice_no)).fetchone()
    if invoice is None:
        raise InvoiceNotFound(f"supplier {supplier_id} has no invoice {invoice_no}", supplier_id=supplier_id,
                              invoice_no=invoice_no)
    return invoice


def invoice_by_id(conn: psycopg.Connection[Any], invoice_id: int) -> Invoice:
    with conn.cursor(row_factory=class_row(Invoice)) as cur:
        invoice = cur.execute(_INVOICE_SQL + " where i.id = %s", (invoice_id,)).fetchone()
    assert invoice is not None, f"invoice {invoice_id} vanished from an append-only table"
    return invoice


def get_advances(conn: psycopg.Connection[Any], ids: Sequence[int]) -> dict[int, Advance]:
    with conn.cursor(row_factory=class_row(Advance)) as cur:
        rows = cur.execute(_ADVANCES_SQL + " where v.id = any(%(ids)s)",
                           {"ids": list(ids), "zone": calendar.business_time_zone().key}).fetchall()
    return {a.id: a for a in rows}


def get_advance(conn: psycopg.Connection[Any], advance_id: int, *, lock: bool = False) -> Advance:
    advance_id = parse_advance_id(advance_id)
    if lock:
        conn.execute("select 1 from ledger.factoring_advances where id = %s for update", (advance_id,))
    found = get_advances(conn, [advance_id]).get(advance_id)
    if found is None:
        raise AdvanceNotFound(f"no advance {advance_id}", advance_id=advance_id)
    return found


def advance_of_invoice(conn: psycopg.Connection[Any], invoice_id: int, *, lock: bool) -> Advance | None:
    row = conn.execute(f"select id from ledger.factoring_advances where invoice_id = %s{' for update' if lock else ''}",
                       (invoice_id,)).fetchone()
    return None if row is None else get_advances(conn, [row[0]])[row[0]]


def list_advances(
    conn: psycopg.Connection[Any], *, supplier_id: str | None = None, status: str | None = None,
    after_id: int | None = None, limit: int = page_size_max,
) -> list[Advance]:
    """Advances in id order, keyset-paginated by id, optionally of one supplier and status."""
    if status is not None and status not in AdvanceStatus.ALL:
        raise ValidationError(f"status must be one of {AdvanceStatus.ALL}, got {status!r}", field="status")
    if not 1 <= limit <= page_size_max + 1:
        raise ValidationError(f"a page holds 1 to {page_size_max} advances", field="first")
    with conn.cursor(row_factory=class_row(Advance)) as cur:
        return cur.execute(
            _ADVANCES_SQL + """
                 where (%(supplier)s::text is null or v.supplier_id = %(supplier)s)
                   and (%(status)s::text is null or v.status = %(status)s)
                   and v.id > coalesce(%(after)s, 0)
                 order by v.id limit %(limit)s""",
            {"supplier": supplier_id, "status": status, "after": after_id, "limit": limit,
             "zone": calendar.business_time_zone().key}).fetchall()


def require_open(advance: Advance) -> None:
    if advance.status != AdvanceStatus.OPEN:
        raise AdvanceNotOpen(f"advance {advance.id} is {advance.status.lower()}", advance_id=advance.id,
                             status=advance.status)
