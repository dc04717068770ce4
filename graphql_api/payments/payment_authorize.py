"""`authorizePayment`: a hold on the customer's wallet in favour of the merchant."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import POSTERS, NotOnboarded, PaymentStepDone, step_fields
from graphql_api.scalars import DateTime, MinorUnits
from ledger.errors import LedgerError
from ledger.products import payments

__all__ = ["AuthorizePaymentInput", "PaymentAuthorized", "AuthorizePaymentResult", "PaymentAuthorizeMutation"]


@strawberry.input
class AuthorizePaymentInput:
    idempotency_key: str
    customer_id: str
    merchant_id: str
    amount: MinorUnits
    expires_at: DateTime | None = strawberry.field(
        default=None, description="When the authorization lapses (at most 30 days ahead; default 30 days).")


@strawberry.type(description="The payment, AUTHORIZED; the transaction is its hold.")
class PaymentAuthorized(PaymentStepDone):
    pass


AuthorizePaymentResult = result_union("AuthorizePaymentResult", PaymentAuthorized, NotOnboarded)


@strawberry.type
class PaymentAuthorizeMutation:
    @strawberry.mutation(description="Authorize a payment: hold the amount on the customer's wallet.")
    async def authorize_payment(self, info: Info, input: AuthorizePaymentInput) -> AuthorizePaymentResult:
        try:
            require_role(info, *POSTERS)
            step = await run_db(info, payments.authorize_payment, idempotency_key=input.idempotency_key,
                                customer_id=input.customer_id, merchant_id=input.merchant_id,
                                amount_fen=input.amount, expires_at=input.expires_at)
            return PaymentAuthorized(**step_fields(step))
        except LedgerError as exc:
            return error_result(exc, AuthorizePaymentResult)
