"""An advance repaid: by the retail business paying the invoice (fee, principal, then the
supplier's remainder, less its recourse debt) or by the supplier paying back early.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ledger.accounts import Side
from ledger.database_transaction import database_transaction
from ledger.errors import ValidationError
from ledger.journal import get_transaction_by_key
from ledger.money import parse_amount
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products.effective import business_day_of, parse_effective_at, request_instant
from ledger.products.factoring.common import (
    AmountExceedsOutstanding,
    InvoiceAlreadyPaid,
    advance_code,
    fee_code,
    nonzero_legs,
    parse_advance_id,
    parse_invoice_no,
    parse_key,
    record_step,
    recourse_code,
    replay_of,
)
from ledger.products.factoring.fees import catch_up, check_step_day
from ledger.products.factoring.records import (
    Advance,
    AdvanceStatus,
    Invoice,
    advance_of_invoice,
    get_advance,
    get_invoice,
    invoice_by_id,
    require_open,
)
from ledger.products.onboarding import parse_party_id

# Advisory-lock namespace (first key of the two-key form).
_SUPPLIER_LOCK = 7260041  # the supplier's recourse receivable, read then posted by a payment


@dataclass(frozen=True)
class InvoicePayment:
    """How one payment of the buyer was split: fee, principal, recourse recovered, remitted."""

    invoice: Invoice
    advance: Advance | None
    paid_fen: int
    fee_fen: int
    principal_fen: int
    remainder_fen: int
    recovered_fen: int
    remitted_fen: int
    transaction_ids: tuple[int, ...]  # the payment, then the remittance if there was one
    replayed: bool


@dataclass(frozen=True)
class Repayment:
    advance: Advance
    amount_fen: int
    fee_fen: int
    principal_fen: int
    transaction_id: int
    replayed: bool


# The buyer pays ----------------------------------------------------------------------------------

def settle_invoice(
    conn: psycopg.Connection[Any], supplier_id: str, invoice_no: str, *, idempotency_key: str,
    amount: int | str | None = None, effective_at: datetime | None = None,
) -> InvoicePayment:
    """The retail business pays the invoice (all that is unpaid, or `amount` of it).

    The payment discharges the retail payable, goes to the open advance's fee, then its principal;
    the remainder is the supplier's: it first recovers the supplier's recourse receivable, the
    rest is remitted from own funds.

    effective_at (default now) dates the payment (ledger/products/effective.py): the open
    advance's fee is caught up through its business day, which may not lie before the invoice's
    issue, the advance, or the day its fee is already accrued through (FeeAccruedPastDay).
    """
    supplier_id = parse_party_id(supplier_id, field="supplierId")
    invoice_no = parse_invoice_no(invoice_no)
    amount_fen = None if amount is None else parse_amount(amount)
    key = parse_key("payment", idempotency_key)
    effective_at = parse_effective_at(effective_at)
    request: dict[str, Any] = {"supplier_id": supplier_id, "invoice_no": invoice_no, "amount_fen": amount_fen}
    if effective_at is not None:  # absent from requests made before a payment could be dated
        request["effective_at"] = request_instant(effective_at)
    with database_transaction(conn):
        invoice = get_invoice(conn, supplier_id, invoice_no, lock=True)
        done = replay_of(conn, key, request)
        if done is not None:
            return _payment_replayed(conn, invoice, key, done)
        if invoice.outstanding_fen <= 0:
            raise InvoiceAlreadyPaid(f"invoice {invoice_no} of {supplier_id} is paid in full")
        paid_fen = invoice.outstanding_fen if amount_fen is None else amount_fen
        if paid_fen > invoice.outstanding_fen:
            raise AmountExceedsOutstanding(
                f"invoice {invoice_no} has {invoice.outstanding_fen} unpaid; cannot pay {paid_fen}",
                outstanding=invoice.outstanding_fen, requested=paid_fen)
        advance = advance_of_invoice(conn, invoice.id, lock=True)
        if advance is not None and advance.status != AdvanceStatus.OPEN:
            advance = None
        day = business_day_of(effective_at)
        if day < invoice.issued_on:
            raise ValidationError(f"effectiveAt lies on {day}, before invoice {invoice_no} was issued on "
                                  f"{invoice.issued_on}", field="effectiveAt")
        if advance is not None:
            check_step_day(conn, advance, day)
        conn.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (_SUPPLIER_LOCK, supplier_id))
        return _pay(conn, invoice, advance, paid_fen, key, request, effective_at)


def _pay(conn: psycopg.Connection[Any], invoice: Invoice, advance: Advance | None, paid_fen: int, key: str,
         request: dict[str, Any], effective_at: datetime | None) -> InvoicePayment:
    requests: list[Transfer] = []
    fee_fen = principal_fen = 0
    if advance is not None:
        accrual, fee_due = catch_up(conn, advance, business_day_of(effective_at))
        requests += [accrual] if accrual else []
        fee_fen = min(paid_fen, fee_due)
        principal_fen = min(paid_fen - fee_fen, advance.principal_outstanding_fen)
    remainder_fen = paid_fen - fee_fen - principal_fen
    recovered_fen = min(remainder_fen, _recourse_balance(conn, invoice.supplier_id))
    split = {"paid_fen": paid_fen, "fee_fen": fee_fen, "principal_fen": principal_fen,
             "remainder_fen": remainder_fen, "recovered_fen": recovered_fen,
             "remitted_fen": remainder_fen - recovered_fen}
    metadata = {"request": request, "invoice_id": invoice.id,
                "advance_id": advance.id if advance else None} | split
    payment = Transfer(key, "factoring.invoice_payment", _payment_legs(invoice, advance, split),
                       description=f"Retail business pays {paid_fen} of invoice {invoice.invoice_no} "
                                   f"of {invoice.supplier_id}", effective_at=effective_at, metadata=metadata)
    requests.append(payment)
    payment_at = len(requests) - 1
    collected = fee_fen + principal_fen > 0
    if collected and remainder_fen > 0:
        requests.append(Transfer(f"{key}:remit", "factoring.remit", _remit_legs(invoice.supplier_id, split),
                                 description=f"Remainder of invoice {invoice.invoice_no} to {invoice.supplier_id}",
                                 effective_at=effective_at, metadata={"invoice_id": invoice.id} | split))
    posted = post(conn, requests)
    advance_id = advance.id if advance is not None and collected else None
    record_step(conn, posted[payment_at], "payment", invoice.id, advance_id)
    if len(requests) > payment_at + 1:
        record_step(conn, posted[-1], "remit", invoice.id, advance_id)
    return InvoicePayment(invoice_by_id(conn, invoice.id),
                          get_advance(conn, advance.id) if advance else None, paid_fen, fee_fen, principal_fen,
                          remainder_fen, recovered_fen, remainder_fen - recovered_fen,
                          tuple(p.transaction_id for p in posted[payment_at:]), False)


def _payment_legs(invoice: Invoice, advance: Advance | None, split: dict[str, int]) -> list[Leg]:
    """With an open advance, two movements in one transaction: the retail business pays the invoice
    out of own funds (discharging its payable), and the factor, as assignee, takes that money in
    and applies it to fee, principal and the supplier's remainder (domain page, day 30). Without
    one the retail business pays the supplier directly, less any recourse it owes."""
    payable, paid = chart.supplier_payable(invoice.supplier_id), split["paid_fen"]
    if advance is None or split["fee_fen"] + split["principal_fen"] == 0:
        return nonzero_legs([Leg(payable, Side.DEBIT, paid), Leg(recourse_code(invoice.supplier_id), Side.CREDIT,
                                                               split["recovered_fen"]),
                         Leg(chart.OWN_FUNDS, Side.CREDIT, split["remitted_fen"])])
    return nonzero_legs([
        Leg(payable, Side.DEBIT, paid), Leg(chart.OWN_FUNDS, Side.CREDIT, paid),
        Leg(chart.OWN_FUNDS, Side.DEBIT, paid),
        Leg(fee_code(advance.id), Side.CREDIT, split["fee_fen"]),
        Leg(advance_code(advance.id), Side.CREDIT, split["principal_fen"]),
        Leg(payable, Side.CREDIT, split["remainder_fen"])])


def _remit_legs(supplier_id: str, split: dict[str, int]) -> list[Leg]:
    return nonzero_legs([Leg(chart.supplier_payable(supplier_id), Side.DEBIT, split["remainder_fen"]),
                     Leg(recourse_code(supplier_id), Side.CREDIT, split["recovered_fen"]),
                     Leg(chart.OWN_FUNDS, Side.CREDIT, split["remitted_fen"])])


def _recourse_balance(conn: psycopg.Connection[Any], supplier_id: str) -> int:
    row = conn.execute(
        """select b.posted_debits - b.posted_credits from ledger.accounts a
             join ledger.balances b on b.account_id = a.id where a.code = %s""",
        (recourse_code(supplier_id),)).fetchone()
    return 0 if row is None else int(row[0])



def _payment_replayed(conn: psycopg.Connection[Any], invoice: Invoice, key: str,
                      done: dict[str, Any]) -> InvoicePayment:
    ids = [done["transaction_id"]]
    remit = get_transaction_by_key(conn, f"{key}:remit")
    if remit is not None:
        ids.append(remit.id)
    advance = get_advance(conn, done["advance_id"]) if done.get("advance_id") else None
    return InvoicePayment(invoice, advance, done["paid_fen"], done["fee_fen"], done["principal_fen"],
                          done["remainder_fen"], done["recovered_fen"], done["remitted_fen"], tuple(ids), True)


# The supplier repays early -----------------------------------------------------------------------

def repay_advance(
    conn: psycopg.Connection[Any], advance_id: int, amount: int | str, *, idempotency_key: str,
    effective_at: datetime | None = None,
) -> Repayment:
    """The supplier pays back (cash into own funds): the fee to date first, then principal.

    effective_at (default now) dates it as an invoice payment's (see `settle_invoice`).
    """
    advance_id = parse_advance_id(advance_id)
    amount_fen = parse_amount(amount)
    key = parse_key("repayment", idempotency_key)
    effective_at = parse_effective_at(effective_at)
    request: dict[str, Any] = {"advance_id": advance_id, "amount_fen": amount_fen}
    if effective_at is not None:  # absent from requests made before a repayment could be dated
        request["effective_at"] = request_instant(effective_at)
    with database_transaction(conn):
        advance = get_advance(conn, advance_id, lock=True)
        done = replay_of(conn, key, request)
        if done is not None:
            return Repayment(advance, amount_fen, done["fee_fen"], done["principal_fen"], done["transaction_id"], True)
        require_open(advance)
        day = business_day_of(effective_at)
        check_step_day(conn, advance, day)
        accrual, fee_due = catch_up(conn, advance, day)
        owed = fee_due + advance.principal_outstanding_fen
        if amount_fen > owed:
            raise AmountExceedsOutstanding(
                f"advance {advance_id} has {owed} outstanding (fee {fee_due}, principal "
                f"{advance.principal_outstanding_fen}); cannot repay {amount_fen}", outstanding=owed,
                requested=amount_fen)
        fee_fen = min(amount_fen, fee_due)
        principal_fen = amount_fen - fee_fen
        repayment = Transfer(key, "factoring.repayment", nonzero_legs([
            Leg(chart.OWN_FUNDS, Side.DEBIT, amount_fen), Leg(fee_code(advance_id), Side.CREDIT, fee_fen),
            Leg(advance_code(advance_id), Side.CREDIT, principal_fen)]),
            description=f"Supplier {advance.supplier_id} repays advance {advance_id}", effective_at=effective_at,
            metadata={"request": request, "advance_id": advance_id, "fee_fen": fee_fen,
                      "principal_fen": principal_fen})
        posted = post(conn, ([accrual] if accrual else []) + [repayment])[-1]
        record_step(conn, posted, "repayment", advance.invoice_id, advance_id)
        return Repayment(get_advance(conn, advance_id), amount_fen, fee_fen, principal_fen,
                         posted.transaction_id, False)
