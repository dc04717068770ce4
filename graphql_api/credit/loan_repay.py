"""`repayLoan`: from the customer's wallet, allocated late fees -> fees -> interest -> principal."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.credit._repayment import LoanPayment, payment_of
from graphql_api.credit.errors import LoanClosed, LoanNotFound, Overpayment
from graphql_api.credit.types import POSTERS
from graphql_api.errors import error_result, result_union
from graphql_api.scalars import DateTime, MinorUnits
from ledger.errors import LedgerError
from ledger.products import credit_repay

__all__ = ["RepayLoanInput", "RepayLoanResult", "LoanRepayMutation"]


@strawberry.input
class RepayLoanInput:
    idempotency_key: str
    loan_id: strawberry.ID
    amount: MinorUnits
    paid_at: DateTime | None = strawberry.field(default=None, description="Default now; may lie in the past.")


RepayLoanResult = result_union("RepayLoanResult", LoanPayment, LoanNotFound, Overpayment, LoanClosed)


@strawberry.type
class LoanRepayMutation:
    @strawberry.mutation(description="Repay from the customer's wallet: late fees, then fees, then interest, then "
                                     "principal, oldest due first; more than everything owed is refused.")
    async def repay_loan(self, info: Info, input: RepayLoanInput) -> RepayLoanResult:
        try:
            require_role(info, *POSTERS)
            paid = await context_of(info).run(credit_repay.repay_loan, input.idempotency_key, str(input.loan_id),
                                              input.amount, input.paid_at)
            return await payment_of(info, paid)
        except LedgerError as exc:
            return error_result(exc, RepayLoanResult)
