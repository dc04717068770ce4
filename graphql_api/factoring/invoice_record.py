"""`recordPurchaseInvoice`: the retail business owes a supplier (Dr retail inventory / Cr supplier payable)."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.errors import error_result, result_union
from graphql_api.factoring.types import FACTORING_ERRORS, POSTERS, PurchaseInvoice
from graphql_api.scalars import MinorUnits
from ledger.errors import LedgerError
from ledger.products import factoring as product

__all__ = ["RecordPurchaseInvoiceInput", "PurchaseInvoiceRecorded", "RecordPurchaseInvoiceResult",
           "InvoiceRecordMutation"]


@strawberry.input
class RecordPurchaseInvoiceInput:
    idempotency_key: str
    supplier_id: str
    invoice_no: str = strawberry.field(description="Unique per supplier.")
    amount: MinorUnits
    due_date: date
    issued_on: date | None = strawberry.field(default=None, description="Default: today (the business day).")


@strawberry.type(description="The invoice and the transaction that posted its payable.")
class PurchaseInvoiceRecorded:
    invoice: PurchaseInvoice
    transaction_id: strawberry.ID
    replayed: bool


RecordPurchaseInvoiceResult = result_union("RecordPurchaseInvoiceResult", PurchaseInvoiceRecorded, *FACTORING_ERRORS)


@strawberry.type
class InvoiceRecordMutation:
    @strawberry.mutation(description="Record a purchase invoice of the retail business and post its payable.")
    async def record_purchase_invoice(self, info: Info, input: RecordPurchaseInvoiceInput) -> RecordPurchaseInvoiceResult:
        try:
            require_role(info, *POSTERS)
            done = await run_db(info, product.record_purchase_invoice, input.supplier_id, input.invoice_no,
                                input.amount, input.due_date, idempotency_key=input.idempotency_key,
                                issued_on=input.issued_on)
            return PurchaseInvoiceRecorded(invoice=PurchaseInvoice.of(done.invoice),
                                           transaction_id=strawberry.ID(str(done.transaction_id)),
                                           replayed=done.replayed)
        except LedgerError as exc:
            return error_result(exc, RecordPurchaseInvoiceResult)
