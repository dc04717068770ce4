"""`recoverLoan`: money collected on a written-off loan (Dr wallet / Cr allowance)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.credit._repayment import LoanPayment, payment_of
from graphql_api.credit.errors import LoanNotFound, LoanNotWrittenOff, Overpayment
from graphql_api.credit.types import POSTERS
from graphql_api.errors import error_result, result_union
from graphql_api.scalars import DateTime, MinorUnits
from ledger.errors import LedgerError
from ledger.products import credit_repay

__all__ = ["RecoverLoanInput", "RecoverLoanResult", "LoanRecoverMutation"]


@strawberry.input
class RecoverLoanInput:
    idempotency_key: str
    loan_id: strawberry.ID
    amount: MinorUnits
    recovered_at: DateTime | None = None


RecoverLoanResult = result_union("RecoverLoanResult", LoanPayment, LoanNotFound, LoanNotWrittenOff, Overpayment)


@strawberry.type
class LoanRecoverMutation:
    @strawberry.mutation(description="Record money recovered from the customer's wallet on a written-off loan, "
                                     "at most what was written off.")
    async def recover_loan(self, info: Info, input: RecoverLoanInput) -> RecoverLoanResult:
        try:
            require_role(info, *POSTERS)
            paid = await context_of(info).run(credit_repay.recover_loan, input.idempotency_key, str(input.loan_id),
                                              input.amount, input.recovered_at)
            return await payment_of(info, paid)
        except LedgerError as exc:
            return error_result(exc, RecoverLoanResult)
