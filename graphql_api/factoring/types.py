"""Advance, PurchaseInvoice and their connection, the factoring error types, and helpers the
factoring mutations share (who may post, who may see what)."""

from __future__ import annotations

import enum
from datetime import date

import strawberry
from strawberry.types import Info

from graphql_api.context import principal_of
from graphql_api.core.product_accounts import AccountRole, ProductAccount, product_accounts
from graphql_api.core.types import Money, PageInfo
from graphql_api.errors import LedgerErrorType, register_error
from graphql_api.scalars import JSON, MinorUnits
from ledger.products import factoring as product
from ledger.tokens import Role

__all__ = [
    "POSTERS", "AdvanceStatus", "InvoiceStatus", "Advance", "PurchaseInvoice", "AdvanceEdge", "AdvanceConnection",
    "can_see_supplier", "money", "FACTORING_ERRORS",
    "InvoiceNotFound", "InvoiceAlreadyRecorded", "InvoiceAlreadyAssigned", "InvoiceAlreadyPaid",
    "AdvanceNotFound", "AdvanceNotOpen", "AdvanceNotOverdue", "AmountExceedsOutstanding", "FeeAccruedPastDay",
]

POSTERS = (Role.OPERATOR, Role.ADMIN)


def money(amount_fen: int) -> Money:
    return Money(amount=MinorUnits(int(amount_fen)), currency="CNY")


def can_see_supplier(info: Info, supplier_id: str) -> bool:
    """Holders see only their own invoices and advances; other roles see all."""
    return principal_of(info).may_see_holder(supplier_id)


@strawberry.enum
class AdvanceStatus(enum.Enum):
    OPEN = "OPEN"
    SETTLED = "SETTLED"
    REPAID = "REPAID"
    DEFAULTED = "DEFAULTED"


@strawberry.enum
class InvoiceStatus(enum.Enum):
    OPEN = "OPEN"
    PARTIALLY_PAID = "PARTIALLY_PAID"
    PAID = "PAID"


@strawberry.type(description="A purchase invoice of the retail business; what is paid is read from the journal.")
class PurchaseInvoice:
    id: strawberry.ID
    supplier_id: str
    invoice_no: str
    amount: Money
    paid: Money
    outstanding: Money
    issued_on: date
    due_date: date
    status: InvoiceStatus

    @classmethod
    def of(cls, row: product.Invoice) -> PurchaseInvoice:
        return cls(id=strawberry.ID(str(row.id)), supplier_id=row.supplier_id, invoice_no=row.invoice_no,
                   amount=money(row.amount_fen), paid=money(row.paid_fen), outstanding=money(row.outstanding_fen),
                   issued_on=row.issued_on, due_date=row.due_date, status=InvoiceStatus(row.status))


@strawberry.type(description="A factoring advance; every amount is read from its accounts in the journal.")
class Advance:
    id: strawberry.ID
    supplier_id: str
    invoice_no: str
    invoice_id: strawberry.ID
    due_date: date
    advanced_on: date
    advance_rate: str
    daily_fee_rate: str
    principal: Money = strawberry.field(description="What was advanced: unpaid invoice x rate, rounded down.")
    principal_outstanding: Money
    fee_accrued: Money
    fee_paid: Money
    fee_outstanding: Money
    outstanding: Money = strawberry.field(description="Principal and fee still owed.")
    recourse: Money = strawberry.field(description="Moved to the supplier's recourse receivable at default.")
    days_outstanding: int = strawberry.field(description="Days from the advance to its closing (or today).")
    status: AdvanceStatus
    closed_on: date | None
    accounts: list[ProductAccount] = strawberry.field(
        description="The advance's own accounts: its principal and its fee receivable.")

    @classmethod
    def of(cls, row: product.Advance) -> Advance:
        return cls(
            id=strawberry.ID(str(row.id)), supplier_id=row.supplier_id, invoice_no=row.invoice_no,
            invoice_id=strawberry.ID(str(row.invoice_id)), due_date=row.due_date, advanced_on=row.advanced_on,
            advance_rate=format(row.advance_rate, "f"), daily_fee_rate=format(row.daily_fee_rate, "f"),
            principal=money(row.principal_fen), principal_outstanding=money(row.principal_outstanding_fen),
            fee_accrued=money(row.fee_accrued_fen), fee_paid=money(row.fee_paid_fen),
            fee_outstanding=money(row.fee_outstanding_fen), outstanding=money(row.outstanding_fen),
            recourse=money(row.recourse_fen), days_outstanding=row.days_outstanding(),
            status=AdvanceStatus(row.status), closed_on=row.closed_on, accounts=product_accounts(
                (AccountRole.PRINCIPAL, product.advance_code(row.id)), (AccountRole.FEES, product.fee_code(row.id))))


@strawberry.type
class AdvanceEdge:
    cursor: str
    node: Advance


@strawberry.type
class AdvanceConnection:
    edges: list[AdvanceEdge]
    page_info: PageInfo


# Errors ----------------------------------------------------------------------------------------------

@strawberry.type(description="The supplier has no invoice with this number (or none the caller may see).")
class InvoiceNotFound(LedgerErrorType):
    details: JSON


@strawberry.type(description="The supplier already has an invoice with this number.")
class InvoiceAlreadyRecorded(LedgerErrorType):
    details: JSON


@strawberry.type(description="The invoice was already advanced on: a receivable backs one advance only.")
class InvoiceAlreadyAssigned(LedgerErrorType):
    details: JSON


@strawberry.type(description="The invoice is paid in full.")
class InvoiceAlreadyPaid(LedgerErrorType):
    details: JSON


@strawberry.type(description="No advance with this id (or none the caller may see).")
class AdvanceNotFound(LedgerErrorType):
    details: JSON


@strawberry.type(description="The advance was already repaid, settled or defaulted.")
class AdvanceNotOpen(LedgerErrorType):
    details: JSON


@strawberry.type(description="The advance's invoice has not fallen due yet.")
class AdvanceNotOverdue(LedgerErrorType):
    details: JSON


@strawberry.type(description="The amount is more than what is still owed.")
class AmountExceedsOutstanding(LedgerErrorType):
    details: JSON


@strawberry.type(description="The advance's fee is accrued through a later business day than the step's date.")
class FeeAccruedPastDay(LedgerErrorType):
    details: JSON


register_error(product.InvoiceNotFound, InvoiceNotFound)
register_error(product.InvoiceAlreadyRecorded, InvoiceAlreadyRecorded)
register_error(product.InvoiceAlreadyAssigned, InvoiceAlreadyAssigned)
register_error(product.InvoiceAlreadyPaid, InvoiceAlreadyPaid)
register_error(product.AdvanceNotFound, AdvanceNotFound)
register_error(product.AdvanceNotOpen, AdvanceNotOpen)
register_error(product.AdvanceNotOverdue, AdvanceNotOverdue)
register_error(product.AmountExceedsOutstanding, AmountExceedsOutstanding)
register_error(product.FeeAccruedPastDay, FeeAccruedPastDay)

FACTORING_ERRORS: tuple[type, ...] = (
    InvoiceNotFound, InvoiceAlreadyRecorded, InvoiceAlreadyAssigned, InvoiceAlreadyPaid, AdvanceNotFound,
    AdvanceNotOpen, AdvanceNotOverdue, AmountExceedsOutstanding, FeeAccruedPastDay)
