"""`payOffLoan`: pay everything the payoff quote says and close the loan."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.credit._repayment import LoanPayment, payment_of
from graphql_api.credit.errors import LoanClosed, LoanNotFound, QuoteChanged
from graphql_api.credit.types import POSTERS
from graphql_api.errors import error_result, result_union
from graphql_api.scalars import DateTime, MinorUnits
from ledger.errors import LedgerError
from ledger.products import credit_repay

__all__ = ["PayOffLoanInput", "PayOffLoanResult", "LoanPayOffMutation"]


@strawberry.input
class PayOffLoanInput:
    idempotency_key: str
    loan_id: strawberry.ID
    expected_amount: MinorUnits | None = strawberry.field(
        default=None, description="The quote's total; refused with QuoteChanged if the cost is different now.")
    paid_at: DateTime | None = None


PayOffLoanResult = result_union("PayOffLoanResult", LoanPayment, LoanNotFound, QuoteChanged, LoanClosed)


@strawberry.type
class LoanPayOffMutation:
    @strawberry.mutation(description="Pay the loan off early from the wallet (see payoffQuote) and close it.")
    async def pay_off_loan(self, info: Info, input: PayOffLoanInput) -> PayOffLoanResult:
        try:
            require_role(info, *POSTERS)
            paid = await context_of(info).run(credit_repay.pay_off_loan, input.idempotency_key, str(input.loan_id),
                                              input.expected_amount, input.paid_at)
            return await payment_of(info, paid)
        except LedgerError as exc:
            return error_result(exc, PayOffLoanResult)
