"""Factoring advances to suppliers against the platform's own purchase invoices.

The buyer is the platform's retail business: recording a purchase invoice posts its payable to
the supplier (Dr retail inventory / Cr supplier payable:S). An advance against that receivable
is paid from own funds into a per-advance principal account; a daily fee accrues into a
per-advance fee receivable. When the retail business pays the invoice, the payment goes to the
fee first, then the principal, and the rest to the supplier; after a default the unpaid part
moves to the supplier's recourse receivable, recovered from its later invoice payments.

Every step is one database transaction: lock the invoice or advance row, read the state from the
journal (the balances of the advance's own accounts and the metadata of this product's
transactions), decide, post through `ledger.posting.post`, record which transaction was which
step. Nothing that changes is stored beside the journal. Dates are UTC calendar days; a
backdated step is effective at the start of its day. See shared/domain/README.md, "Factoring".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import class_row

from ledger.accounts import AccountType, Side
from ledger.errors import IdempotencyConflict, LedgerError, ValidationError
from ledger.journal import get_transaction_by_key
from ledger.money import parse_amount
from ledger.posting import Leg, Posted, Transfer, post
from ledger.products import chart
from ledger.products.onboarding import onboard_supplier, parse_party_id
from ledger.products.rounding import RoundingMode, parse_rate

__all__ = [
    "InvoiceNotFound", "InvoiceAlreadyRecorded", "InvoiceAlreadyAssigned", "InvoiceAlreadyPaid",
    "AdvanceNotFound", "AdvanceNotOpen", "AdvanceNotOverdue", "AmountExceedsOutstanding",
    "Invoice", "Advance", "AdvanceStatus", "InvoiceRecorded", "AdvanceMade", "InvoicePayment",
    "Repayment", "Default",
    "record_purchase_invoice", "advance_on_invoice", "settle_invoice",
    "repay_advance", "default_advance", "get_invoice", "get_advance", "get_advances", "list_advances",
    "advance_code", "fee_code", "recourse_code", "FEE_INCOME", "RETAIL_INVENTORY",
    "advance_rounding", "fee_rounding", "advance_rate_max", "daily_fee_rate_max", "page_size_max",
    "invoice_no_length_max", "idempotency_key_length_max",
]

FEE_INCOME = "revenue:factoring_fees"
# The retail business's side of a purchase: what it bought is inventory until sold.
RETAIL_INVENTORY = "assets:retail_inventory"

# Product settings (domain page: advances round down, fees half-up on the running total).
advance_rounding = RoundingMode.DOWN
fee_rounding = RoundingMode.HALF_UP  # ledger.factoring_fee_due rounds with numeric round(): half-up
advance_rate_max = Decimal(1)
daily_fee_rate_max = Decimal("0.01")  # 1% a day is 3650% a year: anything above is a typo
invoice_no_length_max = 64
idempotency_key_length_max = 150  # the ledger key is "factoring.<step>:<key>", at most 200
page_size_max = 100
_INVOICE_NO = re.compile(r"^[A-Za-z0-9_./-]+$")
# Advisory-lock namespaces (first key of the two-key form).
_INVOICE_LOCK = 7260040   # recording an invoice number of a supplier
_SUPPLIER_LOCK = 7260041  # the supplier's recourse receivable, read then posted by a payment


# Errors ------------------------------------------------------------------------------------------

class InvoiceNotFound(LedgerError):
    code = "INVOICE_NOT_FOUND"
    sqlstate = "LD040"


class InvoiceAlreadyRecorded(LedgerError):
    """The supplier already has an invoice with this number (from another request)."""

    code = "INVOICE_ALREADY_RECORDED"
    sqlstate = "LD041"


class InvoiceAlreadyAssigned(LedgerError):
    """The invoice was already advanced on: a receivable is assigned to one advance only."""

    code = "INVOICE_ALREADY_ASSIGNED"
    sqlstate = "LD042"


class InvoiceAlreadyPaid(LedgerError):
    code = "INVOICE_ALREADY_PAID"
    sqlstate = "LD043"


class AdvanceNotFound(LedgerError):
    code = "ADVANCE_NOT_FOUND"
    sqlstate = "LD044"


class AdvanceNotOpen(LedgerError):
    """The advance was already repaid, settled or defaulted."""

    code = "ADVANCE_NOT_OPEN"
    sqlstate = "LD045"


class AdvanceNotOverdue(LedgerError):
    """An advance can be defaulted only after its invoice fell due."""

    code = "ADVANCE_NOT_OVERDUE"
    sqlstate = "LD046"


class AmountExceedsOutstanding(LedgerError):
    code = "AMOUNT_EXCEEDS_OUTSTANDING"
    sqlstate = "LD047"


# Values ------------------------------------------------------------------------------------------

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
        return ((self.closed_on or today or _today()) - self.advanced_on).days


@dataclass(frozen=True)
class InvoiceRecorded:
    invoice: Invoice
    transaction_id: int
    replayed: bool


@dataclass(frozen=True)
class AdvanceMade:
    advance: Advance
    transaction_id: int
    replayed: bool


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


@dataclass(frozen=True)
class Default:
    advance: Advance
    principal_to_recourse_fen: int
    fee_to_recourse_fen: int
    transaction_id: int
    replayed: bool


# Chart -------------------------------------------------------------------------------------------

def advance_code(advance_id: int) -> str:
    return f"assets:factoring:advances:{advance_id}"


def fee_code(advance_id: int) -> str:
    return f"assets:factoring:fees:{advance_id}"


def recourse_code(supplier_id: str) -> str:
    """What a supplier owes back for advances its invoices did not repay."""
    return f"assets:factoring:recourse:{supplier_id}"


def _ensure_product_accounts(conn: psycopg.Connection[Any]) -> None:
    chart.ensure_platform_accounts(conn)
    chart.ensure(conn, FEE_INCOME, "Factoring fee income", AccountType.REVENUE)
    chart.ensure(conn, RETAIL_INVENTORY, "Retail business: purchased inventory", AccountType.ASSET)


# Input -------------------------------------------------------------------------------------------

def _today() -> date:
    return datetime.now(timezone.utc).date()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def _effective_at(day: date) -> datetime | None:
    """Today's steps take effect now; a backdated one at the start of its day."""
    return None if day == _today() else _day_start(day)


def _key(step: str, key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= idempotency_key_length_max:
        raise ValidationError(f"idempotencyKey must be 1 to {idempotency_key_length_max} characters",
                              field="idempotencyKey")
    return f"factoring.{step}:{key}"


def _invoice_no(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= invoice_no_length_max or not _INVOICE_NO.match(value):
        raise ValidationError(
            f"invoiceNo must be 1 to {invoice_no_length_max} letters, digits, '_', '.', '/' or '-', got {value!r}",
            field="invoiceNo")
    return value


def _day(value: object, field: str, *, default: date | None = None, not_after_today: bool = True) -> date:
    if value is None and default is not None:
        return default
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValidationError(f"{field} must be a calendar date, got {value!r}", field=field)
    if not_after_today and value > _today():
        raise ValidationError(f"{field} {value} is in the future (today is {_today()} UTC)", field=field)
    return value


def _rate(value: object, field: str, maximum: Decimal, *, positive: bool) -> Decimal:
    try:
        rate = value if isinstance(value, Decimal) else parse_rate(value, field=field)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValidationError(str(exc), field=field) from None
    if not rate.is_finite() or rate.is_signed() or rate > maximum or (positive and rate == 0):
        low = "above 0" if positive else "at least 0"
        raise ValidationError(f"{field} must be a decimal {low} and at most {maximum}, got {value}", field=field)
    return rate.normalize() if rate else Decimal(0)


def _advance_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
        raise ValidationError(f"advanceId must be an advance id, got {value!r}", field="advanceId")
    return value


# Reading state -----------------------------------------------------------------------------------

_INVOICE_SQL = """
select i.id, i.supplier_id, i.invoice_no, i.amount_fen, i.issued_on, i.due_date,
       coalesce((select sum((t.metadata ->> 'paid_fen')::bigint)
                   from ledger.factoring_steps st join ledger.transactions t on t.id = st.transaction_id
                  where st.invoice_id = i.id and st.step = 'payment'), 0)::bigint as paid_fen
  from ledger.purchase_invoices i
"""

_ADVANCE_COLUMNS = """id, invoice_id, supplier_id, invoice_no, due_date, base_fen, principal_fen, advance_rate,
    daily_fee_rate, advanced_on, principal_outstanding_fen, fee_accrued_fen, fee_paid_fen, fee_outstanding_fen,
    recourse_fen, status, closed_on"""


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


def _invoice_by_id(conn: psycopg.Connection[Any], invoice_id: int) -> Invoice:
    with conn.cursor(row_factory=class_row(Invoice)) as cur:
        invoice = cur.execute(_INVOICE_SQL + " where i.id = %s", (invoice_id,)).fetchone()
    assert invoice is not None, f"invoice {invoice_id} vanished from an append-only table"
    return invoice


def get_advances(conn: psycopg.Connection[Any], ids: Sequence[int]) -> dict[int, Advance]:
    with conn.cursor(row_factory=class_row(Advance)) as cur:
        rows = cur.execute(f"select {_ADVANCE_COLUMNS} from ledger.factoring_advance_states where id = any(%s)",
                           (list(ids),)).fetchall()
    return {a.id: a for a in rows}


def get_advance(conn: psycopg.Connection[Any], advance_id: int, *, lock: bool = False) -> Advance:
    advance_id = _advance_id(advance_id)
    if lock:
        conn.execute("select 1 from ledger.factoring_advances where id = %s for update", (advance_id,))
    found = get_advances(conn, [advance_id]).get(advance_id)
    if found is None:
        raise AdvanceNotFound(f"no advance {advance_id}", advance_id=advance_id)
    return found


def _advance_of_invoice(conn: psycopg.Connection[Any], invoice_id: int, *, lock: bool) -> Advance | None:
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
            f"""select {_ADVANCE_COLUMNS} from ledger.factoring_advance_states
                 where (%(supplier)s::text is null or supplier_id = %(supplier)s)
                   and (%(status)s::text is null or status = %(status)s)
                   and id > coalesce(%(after)s, 0)
                 order by id limit %(limit)s""",
            {"supplier": supplier_id, "status": status, "after": after_id, "limit": limit}).fetchall()


def _replay_of(conn: psycopg.Connection[Any], key: str, request: dict[str, Any]) -> dict[str, Any] | None:
    """The metadata of the transaction a key already posted, if any; refused if asked differently."""
    done = get_transaction_by_key(conn, key)
    if done is None:
        return None
    if done.metadata.get("request") != request:
        raise IdempotencyConflict(f"idempotency key {key} was already used for a different request",
                                  idempotency_key=key)
    return dict(done.metadata) | {"transaction_id": done.id}


def _record_step(conn: psycopg.Connection[Any], posted: Posted, step: str, invoice_id: int,
                 advance_id: int | None = None) -> None:
    conn.execute(
        """insert into ledger.factoring_steps (transaction_id, step, invoice_id, advance_id)
           values (%s, %s, %s, %s) on conflict (transaction_id) do nothing""",
        (posted.transaction_id, step, invoice_id, advance_id))


# Recording an invoice ----------------------------------------------------------------------------

def record_purchase_invoice(
    conn: psycopg.Connection[Any], supplier_id: str, invoice_no: str, amount: int | str, due_date: date, *,
    idempotency_key: str, issued_on: date | None = None,
) -> InvoiceRecorded:
    """The retail business owes the supplier: Dr retail inventory / Cr supplier payable:S."""
    supplier_id = parse_party_id(supplier_id, field="supplierId")
    invoice_no = _invoice_no(invoice_no)
    amount_fen = parse_amount(amount)
    # A defaulted date stays out of the request: a retry on a later day is still the same request.
    given_issued_on = None if issued_on is None else _day(issued_on, "issuedOn").isoformat()
    issued_on = _day(issued_on, "issuedOn", default=_today())
    due_date = _day(due_date, "dueDate", not_after_today=False)
    if due_date < issued_on:
        raise ValidationError(f"dueDate {due_date} is before the invoice was issued on {issued_on}", field="dueDate")
    key = _key("invoice", idempotency_key)
    request = {"supplier_id": supplier_id, "invoice_no": invoice_no, "amount_fen": amount_fen,
               "due_date": due_date.isoformat(), "issued_on": given_issued_on}
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (_INVOICE_LOCK, f"{supplier_id}/{invoice_no}"))
        done = _replay_of(conn, key, request)
        if done is not None:
            return InvoiceRecorded(get_invoice(conn, supplier_id, invoice_no), done["transaction_id"], True)
        if conn.execute("select 1 from ledger.purchase_invoices where supplier_id = %s and invoice_no = %s",
                        (supplier_id, invoice_no)).fetchone():
            raise InvoiceAlreadyRecorded(f"supplier {supplier_id} already has an invoice {invoice_no}",
                                         supplier_id=supplier_id, invoice_no=invoice_no)
        onboard_supplier(conn, supplier_id)
        _ensure_product_accounts(conn)
        posted = post(conn, [Transfer(
            key, "factoring.invoice",
            [Leg(RETAIL_INVENTORY, Side.DEBIT, amount_fen), Leg(chart.supplier_payable(supplier_id), Side.CREDIT, amount_fen)],
            description=f"Purchase invoice {invoice_no} of supplier {supplier_id}, due {due_date}",
            effective_at=_effective_at(issued_on), metadata={"request": request})])[0]
        row = conn.execute(
            """insert into ledger.purchase_invoices (supplier_id, invoice_no, amount_fen, issued_on, due_date)
               values (%s, %s, %s, %s, %s) returning id""",
            (supplier_id, invoice_no, amount_fen, issued_on, due_date)).fetchone()
        assert row is not None
        _record_step(conn, posted, "invoice", row[0])
        return InvoiceRecorded(_invoice_by_id(conn, row[0]), posted.transaction_id, False)


# Advancing ---------------------------------------------------------------------------------------

def advance_on_invoice(
    conn: psycopg.Connection[Any], supplier_id: str, invoice_no: str, advance_rate: str | Decimal,
    daily_fee_rate: str | Decimal, *, idempotency_key: str, advanced_on: date | None = None,
) -> AdvanceMade:
    """Advance (unpaid invoice x rate, rounded down) from own funds: Dr advance:<id> / Cr own funds."""
    supplier_id = parse_party_id(supplier_id, field="supplierId")
    invoice_no = _invoice_no(invoice_no)
    rate = _rate(advance_rate, "advanceRate", advance_rate_max, positive=True)
    fee_rate = _rate(daily_fee_rate, "dailyFeeRate", daily_fee_rate_max, positive=False)
    day = _day(advanced_on, "advancedOn", default=_today())
    key = _key("advance", idempotency_key)
    request = {"supplier_id": supplier_id, "invoice_no": invoice_no, "advance_rate": str(rate),
               "daily_fee_rate": str(fee_rate), "advanced_on": None if advanced_on is None else day.isoformat()}
    with conn.transaction():
        invoice = get_invoice(conn, supplier_id, invoice_no, lock=True)
        done = _replay_of(conn, key, request)
        if done is not None:
            return AdvanceMade(get_advance(conn, done["advance_id"]), done["transaction_id"], True)
        existing = _advance_of_invoice(conn, invoice.id, lock=False)
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
    _ensure_product_accounts(conn)
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
        effective_at=_effective_at(day), metadata={"request": request, "advance_id": advance_id})])[0]
    _record_step(conn, posted, "advance", invoice.id, advance_id)
    return AdvanceMade(get_advance(conn, advance_id), posted.transaction_id, False)


# Fee accrual (the daily job over every advance is ledger/products/factoring_accrual.py) -----------

def _accrual(advance_id: int, on: date, fee_fen: int) -> Transfer:
    """The one request that accrues an advance's fee through `on`: the daily job and the catch-up
    of a payment build it alike, so whichever posts second is a replay."""
    return Transfer(
        f"factoring.fee:{advance_id}:{on.isoformat()}", "factoring.fee_accrual",
        [Leg(fee_code(advance_id), Side.DEBIT, fee_fen), Leg(FEE_INCOME, Side.CREDIT, fee_fen)],
        description=f"Factoring fee of advance {advance_id} through {on}",
        effective_at=_day_start(on), metadata={"advance_id": advance_id, "accrued_through": on.isoformat()})


def _fee_due(conn: psycopg.Connection[Any], advance_ids: Sequence[int], on: date) -> list[tuple[int, int]]:
    return [(int(r[0]), int(r[1])) for r in conn.execute(
        "select advance_id, fee_fen from ledger.factoring_fee_due(%s, %s)", (list(advance_ids), on)).fetchall()]


def _catch_up(conn: psycopg.Connection[Any], advance: Advance, on: date) -> tuple[Transfer | None, int]:
    """The accrual still missing through `on`, and the fee then due (outstanding + missing)."""
    due = _fee_due(conn, [advance.id], on)
    if not due:
        return None, advance.fee_outstanding_fen
    return _accrual(advance.id, on, due[0][1]), advance.fee_outstanding_fen + due[0][1]


# The buyer pays ----------------------------------------------------------------------------------

def settle_invoice(
    conn: psycopg.Connection[Any], supplier_id: str, invoice_no: str, *, idempotency_key: str,
    amount: int | str | None = None,
) -> InvoicePayment:
    """The retail business pays the invoice (all that is unpaid, or `amount` of it).

    The payment discharges the retail payable, goes to the open advance's fee, then its principal;
    the remainder is the supplier's: it first recovers the supplier's recourse receivable, the
    rest is remitted from own funds.
    """
    supplier_id = parse_party_id(supplier_id, field="supplierId")
    invoice_no = _invoice_no(invoice_no)
    amount_fen = None if amount is None else parse_amount(amount)
    key = _key("payment", idempotency_key)
    request = {"supplier_id": supplier_id, "invoice_no": invoice_no, "amount_fen": amount_fen}
    with conn.transaction():
        invoice = get_invoice(conn, supplier_id, invoice_no, lock=True)
        done = _replay_of(conn, key, request)
        if done is not None:
            return _payment_replayed(conn, invoice, key, done)
        if invoice.outstanding_fen <= 0:
            raise InvoiceAlreadyPaid(f"invoice {invoice_no} of {supplier_id} is paid in full")
        paid_fen = invoice.outstanding_fen if amount_fen is None else amount_fen
        if paid_fen > invoice.outstanding_fen:
            raise AmountExceedsOutstanding(
                f"invoice {invoice_no} has {invoice.outstanding_fen} unpaid; cannot pay {paid_fen}",
                outstanding=invoice.outstanding_fen, requested=paid_fen)
        advance = _advance_of_invoice(conn, invoice.id, lock=True)
        if advance is not None and advance.status != AdvanceStatus.OPEN:
            advance = None
        conn.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (_SUPPLIER_LOCK, supplier_id))
        return _pay(conn, invoice, advance, paid_fen, key, request)


def _pay(conn: psycopg.Connection[Any], invoice: Invoice, advance: Advance | None, paid_fen: int, key: str,
         request: dict[str, Any]) -> InvoicePayment:
    requests: list[Transfer] = []
    fee_fen = principal_fen = 0
    if advance is not None:
        accrual, fee_due = _catch_up(conn, advance, _today())
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
                                   f"of {invoice.supplier_id}", metadata=metadata)
    requests.append(payment)
    payment_at = len(requests) - 1
    collected = fee_fen + principal_fen > 0
    if collected and remainder_fen > 0:
        requests.append(Transfer(f"{key}:remit", "factoring.remit", _remit_legs(invoice.supplier_id, split),
                                 description=f"Remainder of invoice {invoice.invoice_no} to {invoice.supplier_id}",
                                 metadata={"invoice_id": invoice.id} | split))
    posted = post(conn, requests)
    advance_id = advance.id if advance is not None and collected else None
    _record_step(conn, posted[payment_at], "payment", invoice.id, advance_id)
    if len(requests) > payment_at + 1:
        _record_step(conn, posted[-1], "remit", invoice.id, advance_id)
    return InvoicePayment(_invoice_by_id(conn, invoice.id),
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
        return _nonzero([Leg(payable, Side.DEBIT, paid), Leg(recourse_code(invoice.supplier_id), Side.CREDIT,
                                                               split["recovered_fen"]),
                         Leg(chart.OWN_FUNDS, Side.CREDIT, split["remitted_fen"])])
    return _nonzero([
        Leg(payable, Side.DEBIT, paid), Leg(chart.OWN_FUNDS, Side.CREDIT, paid),
        Leg(chart.OWN_FUNDS, Side.DEBIT, paid),
        Leg(fee_code(advance.id), Side.CREDIT, split["fee_fen"]),
        Leg(advance_code(advance.id), Side.CREDIT, split["principal_fen"]),
        Leg(payable, Side.CREDIT, split["remainder_fen"])])


def _remit_legs(supplier_id: str, split: dict[str, int]) -> list[Leg]:
    return _nonzero([Leg(chart.supplier_payable(supplier_id), Side.DEBIT, split["remainder_fen"]),
                     Leg(recourse_code(supplier_id), Side.CREDIT, split["recovered_fen"]),
                     Leg(chart.OWN_FUNDS, Side.CREDIT, split["remitted_fen"])])


def _nonzero(legs: list[Leg]) -> list[Leg]:
    kept = [leg for leg in legs if leg.amount > 0]
    assert sum(leg.amount if leg.side is Side.DEBIT else -leg.amount for leg in kept) == 0, kept
    return kept


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
) -> Repayment:
    """The supplier pays back (cash into own funds): the fee to date first, then principal."""
    advance_id = _advance_id(advance_id)
    amount_fen = parse_amount(amount)
    key = _key("repayment", idempotency_key)
    request = {"advance_id": advance_id, "amount_fen": amount_fen}
    with conn.transaction():
        advance = get_advance(conn, advance_id, lock=True)
        done = _replay_of(conn, key, request)
        if done is not None:
            return Repayment(advance, amount_fen, done["fee_fen"], done["principal_fen"], done["transaction_id"], True)
        _require_open(advance)
        accrual, fee_due = _catch_up(conn, advance, _today())
        owed = fee_due + advance.principal_outstanding_fen
        if amount_fen > owed:
            raise AmountExceedsOutstanding(
                f"advance {advance_id} has {owed} outstanding (fee {fee_due}, principal "
                f"{advance.principal_outstanding_fen}); cannot repay {amount_fen}", outstanding=owed,
                requested=amount_fen)
        fee_fen = min(amount_fen, fee_due)
        principal_fen = amount_fen - fee_fen
        repayment = Transfer(key, "factoring.repayment", _nonzero([
            Leg(chart.OWN_FUNDS, Side.DEBIT, amount_fen), Leg(fee_code(advance_id), Side.CREDIT, fee_fen),
            Leg(advance_code(advance_id), Side.CREDIT, principal_fen)]),
            description=f"Supplier {advance.supplier_id} repays advance {advance_id}",
            metadata={"request": request, "advance_id": advance_id, "fee_fen": fee_fen,
                      "principal_fen": principal_fen})
        posted = post(conn, ([accrual] if accrual else []) + [repayment])[-1]
        _record_step(conn, posted, "repayment", advance.invoice_id, advance_id)
        return Repayment(get_advance(conn, advance_id), amount_fen, fee_fen, principal_fen,
                         posted.transaction_id, False)


def _require_open(advance: Advance) -> None:
    if advance.status != AdvanceStatus.OPEN:
        raise AdvanceNotOpen(f"advance {advance.id} is {advance.status.lower()}", advance_id=advance.id,
                             status=advance.status)


# Default -----------------------------------------------------------------------------------------

def default_advance(conn: psycopg.Connection[Any], advance_id: int, *, idempotency_key: str) -> Default:
    """Past due and not repaid by the buyer's payments (the invoice diluted or unpaid): what is
    still owed, principal and fee to date, becomes the supplier's recourse receivable."""
    advance_id = _advance_id(advance_id)
    key = _key("default", idempotency_key)
    request = {"advance_id": advance_id}
    with conn.transaction():
        advance = get_advance(conn, advance_id, lock=True)
        done = _replay_of(conn, key, request)
        if done is not None:
            return Default(advance, done["principal_to_recourse_fen"], done["fee_to_recourse_fen"],
                           done["transaction_id"], True)
        _require_open(advance)
        today = _today()
        if today <= advance.due_date:
            raise AdvanceNotOverdue(f"advance {advance_id}: invoice {advance.invoice_no} falls due on "
                                    f"{advance.due_date}; it can be defaulted after that", due_date=str(advance.due_date))
        accrual, fee_due = _catch_up(conn, advance, today)
        principal_fen = advance.principal_outstanding_fen
        supplier = advance.supplier_id
        chart.ensure(conn, recourse_code(supplier), f"Factoring recourse receivable from {supplier}",
                     AccountType.ASSET, holder_id=supplier, min_balance=0)
        default = Transfer(key, "factoring.default", _nonzero([
            Leg(recourse_code(supplier), Side.DEBIT, principal_fen + fee_due),
            Leg(advance_code(advance_id), Side.CREDIT, principal_fen), Leg(fee_code(advance_id), Side.CREDIT, fee_due)]),
            description=f"Advance {advance_id} defaulted: unpaid principal and fee recoverable from {supplier}",
            metadata={"request": request, "advance_id": advance_id, "principal_to_recourse_fen": principal_fen,
                      "fee_to_recourse_fen": fee_due})
        posted = post(conn, ([accrual] if accrual else []) + [default])[-1]
        _record_step(conn, posted, "default", advance.invoice_id, advance_id)
        return Default(get_advance(conn, advance_id), principal_fen, fee_due, posted.transaction_id, False)
