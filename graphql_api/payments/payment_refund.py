"""`refundPayment`: give (part of) a captured payment back, never more than captured minus refunded."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import parse_id
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import (
    POSTERS,
    PaymentNotFound,
    PaymentStepDone,
    RefundExceedsCaptured,
    step_fields,
)
from graphql_api.scalars import MinorUnits
from ledger.errors import LedgerError
from ledger.products import payments

__all__ = ["RefundPaymentInput", "PaymentRefunded", "RefundPaymentResult", "PaymentRefundMutation"]


@strawberry.input
class RefundPaymentInput:
    idempotency_key: str
    payment_id: strawberry.ID
    amount: MinorUnits


@strawberry.type(description="The payment after the refund (with the fee given back pro rata when the merchant's terms say so).")
class PaymentRefunded(PaymentStepDone):
    pass


RefundPaymentResult = result_union("RefundPaymentResult", PaymentRefunded, PaymentNotFound, RefundExceedsCaptured)


@strawberry.type
class PaymentRefundMutation:
    @strawberry.mutation(description="Refund a captured payment: Dr merchant / Cr wallet, and the fee pro rata by "
                                     "the merchant's terms.")
    async def refund_payment(self, info: Info, input: RefundPaymentInput) -> RefundPaymentResult:
        try:
            require_role(info, *POSTERS)
            step = await run_db(info, payments.refund_payment, idempotency_key=input.idempotency_key,
                                payment_id=parse_id(input.payment_id, "paymentId"), amount_fen=input.amount)
            return PaymentRefunded(**step_fields(step))
        except LedgerError as exc:
            return error_result(exc, RefundPaymentResult)
