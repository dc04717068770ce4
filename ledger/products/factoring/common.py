"""What every factoring step shares: the product's accounts and settings, its errors, the
per-advance chart, input parsing, and the plumbing of an idempotent step (its replay from the
journal and the record of which transaction was which step).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg

from ledger import calendar
from ledger.accounts import AccountType, Side
from ledger.errors import IdempotencyConflict, LedgerError, ValidationError
from ledger.journal import get_transaction_by_key
from ledger.posting import Leg, Posted
from ledger.products import chart
from ledger.products.rounding import RoundingMode, parse_rate

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
_INVOICE_NO = re.compile(r"[A-Za-z0-9_./-]+")


# Errors ------------------------------------------------------------------------------------------

class InvoiceNotFound(LedgerError):
    code = "INVOICE_NOT_FOUND"


class InvoiceAlreadyRecorded(LedgerError):
    """The supplier already has an invoice with this number (from another request)."""

    code = "INVOICE_ALREADY_RECORDED"


class InvoiceAlreadyAssigned(LedgerError):
    """The invoice was already advanced on: a receivable is assigned to one advance only."""

    code = "INVOICE_ALREADY_ASSIGNED"


class InvoiceAlreadyPaid(LedgerError):
    code = "INVOICE_ALREADY_PAID"


class AdvanceNotFound(LedgerError):
    code = "ADVANCE_NOT_FOUND"


class AdvanceNotOpen(LedgerError):
    """The advance was already repaid, settled or defaulted."""

    code = "ADVANCE_NOT_OPEN"


class AdvanceNotOverdue(LedgerError):
    """An advance can be defaulted only after its invoice fell due."""

    code = "ADVANCE_NOT_OVERDUE"


class AmountExceedsOutstanding(LedgerError):
    code = "AMOUNT_EXCEEDS_OUTSTANDING"


class FeeAccruedPastDay(LedgerError):
    """The advance's fee is accrued through a later business day than the step's: a step dated
    before it would leave fee charged on principal it repaid."""

    code = "FEE_ACCRUED_PAST_DAY"


# Chart -------------------------------------------------------------------------------------------

def advance_code(advance_id: int) -> str:
    return f"assets:factoring:advances:{advance_id}"


def fee_code(advance_id: int) -> str:
    return f"assets:factoring:fees:{advance_id}"


def recourse_code(supplier_id: str) -> str:
    """What a supplier owes back for advances its invoices did not repay."""
    return f"assets:factoring:recourse:{supplier_id}"


def ensure_product_accounts(conn: psycopg.Connection[Any]) -> None:
    chart.ensure_platform_accounts(conn)
    chart.ensure(conn, FEE_INCOME, "Factoring fee income", AccountType.REVENUE)
    chart.ensure(conn, RETAIL_INVENTORY, "Retail business: purchased inventory", AccountType.ASSET)


# Input -------------------------------------------------------------------------------------------

def step_effective_at(day: date) -> datetime | None:
    """Today's steps take effect now; a backdated one at the start of its day."""
    return None if day == calendar.today() else calendar.day_start(day)


def parse_key(step: str, key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= idempotency_key_length_max:
        raise ValidationError(f"idempotencyKey must be 1 to {idempotency_key_length_max} characters",
                              field="idempotencyKey")
    return f"factoring.{step}:{key}"


def parse_invoice_no(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= invoice_no_length_max or not _INVOICE_NO.fullmatch(value):
        raise ValidationError(
            f"invoiceNo must be 1 to {invoice_no_length_max} letters, digits, '_', '.', '/' or '-', got {value!r}",
            field="invoiceNo")
    return value


def parse_day(value: object, field: str, *, default: date | None = None, not_after_today: bool = True) -> date:
    if value is None and default is not None:
        return default
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValidationError(f"{field} must be a calendar date, got {value!r}", field=field)
    if not_after_today and value > calendar.today():
        raise ValidationError(f"{field} {value} is in the future (today is {calendar.today()})", field=field)
    return value


def parse_rate_within(value: object, field: str, maximum: Decimal, *, positive: bool) -> Decimal:
    try:
        rate = value if isinstance(value, Decimal) else parse_rate(value, field=field)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValidationError(str(exc), field=field) from None
    if not rate.is_finite() or rate.is_signed() or rate > maximum or (positive and rate == 0):
        low = "above 0" if positive else "at least 0"
        raise ValidationError(f"{field} must be a decimal {low} and at most {maximum}, got {value}", field=field)
    return rate.normalize() if rate else Decimal(0)


def parse_advance_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
        raise ValidationError(f"advanceId must be an advance id, got {value!r}", field="advanceId")
    return value


def replay_of(conn: psycopg.Connection[Any], key: str, request: dict[str, Any]) -> dict[str, Any] | None:
    """The metadata of the transaction a key already posted, if any; refused if asked differently."""
    done = get_transaction_by_key(conn, key)
    if done is None:
        return None
    if done.metadata.get("request") != request:
        raise IdempotencyConflict(f"idempotency key {key} was already used for a different request",
                                  idempotency_key=key)
    return dict(done.metadata) | {"transaction_id": done.id}



def record_step(conn: psycopg.Connection[Any], posted: Posted, step: str, invoice_id: int,
                 advance_id: int | None = None) -> None:
    conn.execute(
        """insert into ledger.factoring_steps (transaction_id, step, invoice_id, advance_id)
           values (%s, %s, %s, %s) on conflict (transaction_id) do nothing""",
        (posted.transaction_id, step, invoice_id, advance_id))



def nonzero_legs(legs: list[Leg]) -> list[Leg]:
    kept = [leg for leg in legs if leg.amount > 0]
    assert sum(leg.amount if leg.side is Side.DEBIT else -leg.amount for leg in kept) == 0, kept
    return kept
