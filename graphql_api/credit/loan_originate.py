"""`originateLoan`: a bank-style loan with a fixed schedule, disbursed to the customer's wallet."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.credit.types import POSTERS, Loan, LoanMethod
from graphql_api.errors import error_result, result_union
from graphql_api.scalars import MinorUnits
from ledger.errors import LedgerError
from ledger.products import credit, credit_view

__all__ = ["OriginateLoanInput", "LoanOriginated", "OriginateLoanResult", "LoanOriginateMutation"]


@strawberry.input
class OriginateLoanInput:
    idempotency_key: str
    customer_id: str
    principal: MinorUnits
    monthly_rate: str = strawberry.field(description='Interest per month, e.g. "0.01".')
    months: int
    method: LoanMethod
    start_date: date = strawberry.field(description="Disbursement date; instalments fall due monthly after it.")
    late_fee_rate_per_day: str | None = strawberry.field(
        default=None, description="This loan's own late-fee rate; default: the setting in force on `startDate`.")


@strawberry.type(description="The loan and its schedule.")
class LoanOriginated:
    loan: Loan
    replayed: bool


OriginateLoanResult = result_union("OriginateLoanResult", LoanOriginated)


@strawberry.type
class LoanOriginateMutation:
    @strawberry.mutation(description="Lend to a customer's wallet on an annuity or equal-principal schedule "
                                     "(interest half-up each period, the last period takes what is left).")
    async def originate_loan(self, info: Info, input: OriginateLoanInput) -> OriginateLoanResult:
        try:
            require_role(info, *POSTERS)
            context = context_of(info)
            loan = await context.run(credit.originate_loan, input.idempotency_key, input.customer_id,
                                     input.principal, input.monthly_rate, input.months, input.method,
                                     input.start_date, input.late_fee_rate_per_day)
            view = await context.run(credit_view.loan_view, loan.id)
            return LoanOriginated(loan=Loan.of(view), replayed=loan.replayed)
        except LedgerError as exc:
            return error_result(exc, OriginateLoanResult)
