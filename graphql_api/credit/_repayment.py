"""The success type shared by repayLoan, payOffLoan and recoverLoan."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of
from graphql_api.core import loaders
from graphql_api.core.types import Money, Transaction
from graphql_api.credit.types import Loan, LoanAllocation, money
from ledger.products import credit_repay, credit_view

__all__ = ["LoanPayment", "payment_of"]


@strawberry.type(description="A payment on a loan: its transaction, how it was allocated, the loan after it.")
class LoanPayment:
    loan: Loan
    transaction: Transaction
    amount: Money
    allocation: LoanAllocation
    replayed: bool


async def payment_of(info: Info, paid: credit_repay.Repayment) -> LoanPayment:
    view = await context_of(info).run(credit_view.loan_view, paid.loan_id)
    return LoanPayment(loan=Loan.of(view), transaction=Transaction.of(
                           await context_of(info).load(loaders.transactions_by_id, paid.transaction_id)),
                       amount=money(paid.amount_fen), allocation=LoanAllocation.of(paid.allocation),
                       replayed=paid.replayed)
