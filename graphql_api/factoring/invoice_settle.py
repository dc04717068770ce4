"""`settleInvoice`: the retail business pays an invoice: fee first, then the advance, the rest to the supplier."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import Money
from graphql_api.errors import error_result, result_union
from graphql_api.factoring.types import FACTORING_ERRORS, POSTERS, Advance, PurchaseInvoice, money
from graphql_api.scalars import DateTime, MinorUnits
from ledger.errors import LedgerError
from ledger.products import factoring as product

__all__ = ["SettleInvoiceInput", "InvoiceSettled", "SettleInvoiceResult", "InvoiceSettleMutation"]


@strawberry.input
class SettleInvoiceInput:
    idempotency_key: str
    supplier_id: str
    invoice_no: str
    amount: MinorUnits | None = strawberry.field(
        default=None, description="A partial payment by the buyer; default: all that is unpaid.")
    effective_at: DateTime | None = strawberry.field(
        default=None, description="When it was paid (default now): an offset, not ahead of now, outside closed "
                                  "periods, not before the day the advance's fee is accrued through.")


@strawberry.type(description="How the payment was split. The remainder first recovers the supplier's "
                             "recourse receivable; the rest is remitted to the supplier.")
class InvoiceSettled:
    invoice: PurchaseInvoice
    advance: Advance | None
    paid: Money
    fee: Money
    principal: Money
    remainder: Money
    recovered: Money
    remitted: Money
    transaction_ids: list[strawberry.ID]
    replayed: bool


SettleInvoiceResult = result_union("SettleInvoiceResult", InvoiceSettled, *FACTORING_ERRORS)


@strawberry.type
class InvoiceSettleMutation:
    @strawberry.mutation(description="The retail business pays a purchase invoice (all or part of it).")
    async def settle_invoice(self, info: Info, input: SettleInvoiceInput) -> SettleInvoiceResult:
        try:
            require_role(info, *POSTERS)
            done = await run_db(info, product.settle_invoice, input.supplier_id, input.invoice_no,
                                idempotency_key=input.idempotency_key, amount=input.amount,
                                effective_at=input.effective_at)
            return InvoiceSettled(
                invoice=PurchaseInvoice.of(done.invoice),
                advance=Advance.of(done.advance) if done.advance is not None else None,
                paid=money(done.paid_fen), fee=money(done.fee_fen), principal=money(done.principal_fen),
                remainder=money(done.remainder_fen), recovered=money(done.recovered_fen),
                remitted=money(done.remitted_fen), transaction_ids=[strawberry.ID(str(i)) for i in done.transaction_ids],
                replayed=done.replayed)
        except LedgerError as exc:
            return error_result(exc, SettleInvoiceResult)
