"""`publishFundIncome` (operator, admin): record a day's figure and credit every holder."""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.core.types import Money
from graphql_api.errors import error_result, result_union
from graphql_api.fund.errors import FundNotFound, IncomeAlreadyPublished, IncomeOutOfOrder
from graphql_api.fund.types import Fund
from graphql_api.scalars import MinorUnits
from ledger.errors import LedgerError
from ledger.products import chart, fund_income
from ledger.products import fund as product
from ledger.tokens import Role

__all__ = ["PublishFundIncomeInput", "FundIncomePublished", "PublishFundIncomeResult", "FundIncomePublishMutation"]


@strawberry.input
class PublishFundIncomeInput:
    fund_id: str
    date: dt.date = strawberry.field(description="The business day; it must have ended.")
    income_per_10k: str = strawberry.field(description='Income per 10,000 units, up to 4 decimals, e.g. "1.7807".')


@strawberry.type(description="The day's distribution; `replayed` when it had been published and paid already.")
class FundIncomePublished:
    fund: Fund
    date: dt.date
    income_per_10k: str
    holders: int = strawberry.field(description="Holders credited (income of at least 1 fen).")
    income: Money
    transactions: int
    replayed: bool


PublishFundIncomeResult = result_union("PublishFundIncomeResult", FundIncomePublished, FundNotFound,
                                       IncomeAlreadyPublished, IncomeOutOfOrder)


@strawberry.type
class FundIncomePublishMutation:
    @strawberry.mutation(description="Record the fund's income per 10,000 units for a day and credit every "
                                     "holder floor(balance at the day's end x R / 10000) fen, once per day.")
    async def publish_fund_income(self, info: Info, input: PublishFundIncomeInput) -> PublishFundIncomeResult:
        try:
            require_role(info, Role.OPERATOR, Role.ADMIN)
            context = context_of(info)
            run = await context.run(fund_income.publish_income, input.fund_id, input.date, input.income_per_10k,
                                    progress=None)
            fund = await context.run(product.get_fund, run.fund_id)
            return FundIncomePublished(
                fund=Fund.of(fund), date=run.income_date, income_per_10k=str(run.income_per_10k),
                holders=run.holders, income=Money(amount=MinorUnits(run.income_fen), currency=chart.currency),
                transactions=run.transactions, replayed=run.replayed)
        except LedgerError as exc:
            return error_result(exc, PublishFundIncomeResult)
