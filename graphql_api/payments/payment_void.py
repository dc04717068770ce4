"""`voidPayment`: release an authorization."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import parse_id
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import POSTERS, PaymentNotFound, PaymentStepDone, step_fields
from ledger.errors import LedgerError
from ledger.products import payments

__all__ = ["VoidPaymentInput", "PaymentVoided", "VoidPaymentResult", "PaymentVoidMutation"]


@strawberry.input
class VoidPaymentInput:
    idempotency_key: str
    payment_id: strawberry.ID


@strawberry.type(description="The payment, VOIDED.")
class PaymentVoided(PaymentStepDone):
    pass


VoidPaymentResult = result_union("VoidPaymentResult", PaymentVoided, PaymentNotFound)


@strawberry.type
class PaymentVoidMutation:
    @strawberry.mutation(description="Void an authorized (or expired) payment, releasing its hold.")
    async def void_payment(self, info: Info, input: VoidPaymentInput) -> VoidPaymentResult:
        try:
            require_role(info, *POSTERS)
            step = await run_db(info, payments.void_payment, idempotency_key=input.idempotency_key,
                                payment_id=parse_id(input.payment_id, "paymentId"))
            return PaymentVoided(**step_fields(step))
        except LedgerError as exc:
            return error_result(exc, VoidPaymentResult)
