"""`purchaseOnCredit`: pay the merchant from the customer's credit line; a loan opens."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.credit.errors import CreditLimitExceeded, NoCreditLine
from graphql_api.credit.types import POSTERS, Loan
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import NotOnboarded
from graphql_api.scalars import DateTime, MinorUnits
from ledger.errors import LedgerError
from ledger.products import credit, credit_view

__all__ = ["PurchaseOnCreditInput", "PurchasedOnCredit", "PurchaseOnCreditResult", "LoanPurchaseMutation"]


@strawberry.input
class PurchaseOnCreditInput:
    idempotency_key: str
    customer_id: str
    merchant_id: str
    amount: MinorUnits
    purchased_at: DateTime = strawberry.field(description="When the purchase happened (may lie in the past).")


@strawberry.type(description="The loan opened: interest-free until its due date.")
class PurchasedOnCredit:
    loan: Loan
    replayed: bool


PurchaseOnCreditResult = result_union("PurchaseOnCreditResult", PurchasedOnCredit, CreditLimitExceeded,
                                      NoCreditLine, NotOnboarded)


@strawberry.type
class LoanPurchaseMutation:
    @strawberry.mutation(description="Buy now, pay later: Dr loan principal / Cr merchant payable, within the "
                                     "customer's credit line.")
    async def purchase_on_credit(self, info: Info, input: PurchaseOnCreditInput) -> PurchaseOnCreditResult:
        try:
            require_role(info, *POSTERS)
            context = context_of(info)
            loan = await context.run(credit.purchase_on_credit, input.idempotency_key, input.customer_id,
                                     input.merchant_id, input.amount, input.purchased_at)
            view = await context.run(credit_view.loan_view, loan.id)
            return PurchasedOnCredit(loan=Loan.of(view), replayed=loan.replayed)
        except LedgerError as exc:
            return error_result(exc, PurchaseOnCreditResult)
