"""`convertToInstalments`: a purchase into N monthly instalments with a fee per period."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.credit.errors import ConversionRefused, LoanClosed, LoanNotFound
from graphql_api.credit.types import POSTERS, Loan
from graphql_api.errors import error_result, result_union
from graphql_api.scalars import DateTime
from ledger.errors import LedgerError
from ledger.products import credit, credit_view

__all__ = ["ConvertToInstalmentsInput", "LoanConverted", "ConvertToInstalmentsResult", "LoanConvertMutation"]


@strawberry.input
class ConvertToInstalmentsInput:
    idempotency_key: str
    loan_id: strawberry.ID
    instalments: int
    monthly_fee_rate: str = strawberry.field(description='Fee per period on the original principal, e.g. "0.005".')
    converted_at: DateTime | None = strawberry.field(default=None, description="Default now.")


@strawberry.type(description="The loan with its new schedule (the first instalment on the original due date).")
class LoanConverted:
    loan: Loan
    replayed: bool


ConvertToInstalmentsResult = result_union("ConvertToInstalmentsResult", LoanConverted, LoanNotFound,
                                          ConversionRefused, LoanClosed)


@strawberry.type
class LoanConvertMutation:
    @strawberry.mutation(description="Convert a purchase into instalments: fee per period = original principal x "
                                     "rate; principal split evenly, the odd fen in the last.")
    async def convert_to_instalments(self, info: Info, input: ConvertToInstalmentsInput) -> ConvertToInstalmentsResult:
        try:
            require_role(info, *POSTERS)
            context = context_of(info)
            loan = await context.run(credit.convert_to_instalments, input.idempotency_key, str(input.loan_id),
                                     input.instalments, input.monthly_fee_rate, input.converted_at)
            view = await context.run(credit_view.loan_view, loan.id)
            return LoanConverted(loan=Loan.of(view), replayed=loan.replayed)
        except LedgerError as exc:
            return error_result(exc, ConvertToInstalmentsResult)
