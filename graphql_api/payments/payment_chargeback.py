"""`chargeback`: the customer's bank took money back after the merchant's settlement."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import parse_id
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import (
    POSTERS,
    ChargebackNotAllowed,
    PaymentNotFound,
    PaymentStepDone,
    step_fields,
)
from graphql_api.scalars import MinorUnits
from ledger.errors import LedgerError
from ledger.products import payments

__all__ = ["ChargebackInput", "PaymentChargedBack", "ChargebackResult", "PaymentChargebackMutation"]


@strawberry.input
class ChargebackInput:
    idempotency_key: str
    payment_id: strawberry.ID
    amount: MinorUnits


@strawberry.type(description="The payment after the chargeback: Dr chargeback receivable / Cr reserve.")
class PaymentChargedBack(PaymentStepDone):
    pass


ChargebackResult = result_union("ChargebackResult", PaymentChargedBack, PaymentNotFound, ChargebackNotAllowed)


@strawberry.type
class PaymentChargebackMutation:
    @strawberry.mutation(description="Record a chargeback on a settled payment; the merchant owes it back "
                                     "(netted at its next settlement).")
    async def chargeback(self, info: Info, input: ChargebackInput) -> ChargebackResult:
        try:
            require_role(info, *POSTERS)
            step = await run_db(info, payments.chargeback, idempotency_key=input.idempotency_key,
                                payment_id=parse_id(input.payment_id, "paymentId"), amount_fen=input.amount)
            return PaymentChargedBack(**step_fields(step))
        except LedgerError as exc:
            return error_result(exc, ChargebackResult)
