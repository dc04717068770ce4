"""`capturePayment`: post all or part of the hold (the rest is released) and charge the merchant's fee."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import parse_id
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import (
    POSTERS,
    CaptureExceedsAuthorized,
    PaymentNotFound,
    PaymentStepDone,
    step_fields,
)
from graphql_api.scalars import MinorUnits
from ledger.errors import LedgerError
from ledger.products import payments

__all__ = ["CapturePaymentInput", "PaymentCaptured", "CapturePaymentResult", "PaymentCaptureMutation"]


@strawberry.input
class CapturePaymentInput:
    idempotency_key: str
    payment_id: strawberry.ID
    amount: MinorUnits | None = strawberry.field(default=None, description="Omit to capture all.")


@strawberry.type(description="The payment after capture; the transaction posted the hold (the fee is a second one, same batch).")
class PaymentCaptured(PaymentStepDone):
    pass


CapturePaymentResult = result_union("CapturePaymentResult", PaymentCaptured, PaymentNotFound, CaptureExceedsAuthorized)


@strawberry.type
class PaymentCaptureMutation:
    @strawberry.mutation(description="Capture an authorized payment, in full or in part, charging the merchant's fee (half-up).")
    async def capture_payment(self, info: Info, input: CapturePaymentInput) -> CapturePaymentResult:
        try:
            require_role(info, *POSTERS)
            step = await run_db(info, payments.capture_payment, idempotency_key=input.idempotency_key,
                                payment_id=parse_id(input.payment_id, "paymentId"), amount_fen=input.amount)
            return PaymentCaptured(**step_fields(step))
        except LedgerError as exc:
            return error_result(exc, CapturePaymentResult)
