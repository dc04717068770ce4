"""`advanceOnInvoice`: advance against a recorded, unpaid, unassigned invoice (rate x unpaid, rounded down)."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.errors import error_result, result_union
from graphql_api.factoring.types import FACTORING_ERRORS, POSTERS, Advance
from ledger.errors import LedgerError
from ledger.products import factoring as product

__all__ = ["AdvanceOnInvoiceInput", "AdvanceMade", "AdvanceOnInvoiceResult", "AdvanceMakeMutation"]


@strawberry.input
class AdvanceOnInvoiceInput:
    idempotency_key: str
    supplier_id: str
    invoice_no: str
    advance_rate: str = strawberry.field(description='Share of the unpaid invoice advanced, e.g. "0.8".')
    daily_fee_rate: str = strawberry.field(description='Fee per day on the principal, e.g. "0.00025".')
    advanced_on: date | None = strawberry.field(default=None, description="Default: today (the business day).")


@strawberry.type(description="The advance and the transaction that paid it out.")
class AdvanceMade:
    advance: Advance
    transaction_id: strawberry.ID
    replayed: bool


AdvanceOnInvoiceResult = result_union("AdvanceOnInvoiceResult", AdvanceMade, *FACTORING_ERRORS)


@strawberry.type
class AdvanceMakeMutation:
    @strawberry.mutation(description="Advance to the supplier against its invoice: Dr advance / Cr own funds.")
    async def advance_on_invoice(self, info: Info, input: AdvanceOnInvoiceInput) -> AdvanceOnInvoiceResult:
        try:
            require_role(info, *POSTERS)
            done = await run_db(info, product.advance_on_invoice, input.supplier_id, input.invoice_no,
                                input.advance_rate, input.daily_fee_rate, idempotency_key=input.idempotency_key,
                                advanced_on=input.advanced_on)
            return AdvanceMade(advance=Advance.of(done.advance), transaction_id=strawberry.ID(str(done.transaction_id)),
                               replayed=done.replayed)
        except LedgerError as exc:
            return error_result(exc, AdvanceOnInvoiceResult)
