"""Fund, its daily figures, and a customer's holding with its income history.

Rates cross the API as decimal strings ("1.7807", "6.738"): exact, never floats. Fund figures
are public to every role; the holders' total and other customers' holdings are not shown to
holder tokens.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, page_size, principal_of, require_role
from graphql_api.core import loaders
from graphql_api.core.product_accounts import AccountRole, ProductAccount, product_accounts
from graphql_api.core.types import Account, Money, Transaction
from graphql_api.scalars import MinorUnits
from ledger.errors import ValidationError
from ledger.products import chart
from ledger.products import fund as product
from ledger.tokens import Role

__all__ = ["Fund", "FundIncomeFigure", "FundHolding", "FundHoldingIncome", "can_see_customer", "transaction_of"]

_NON_HOLDERS = (Role.ADMIN, Role.OPERATOR, Role.AUDITOR)


async def transaction_of(info: Info, transaction_id: int) -> Transaction:
    """A transaction the fund product just posted (its mutations are for operators and admins)."""
    return Transaction.of(await context_of(info).load(loaders.transactions_by_id, transaction_id))


def can_see_customer(info: Info, customer_id: str) -> bool:
    return principal_of(info).may_see_holder(customer_id)


@strawberry.type(description="A day's published income per 10,000 units and the 7-day yield ending on it.")
class FundIncomeFigure:
    date: date
    income_per_10k: str
    seven_day_yield: str | None = strawberry.field(
        description="Percent, 3 decimals; null unless all 7 days ending on this one are published.")

    @classmethod
    def of(cls, row: product.IncomeFigure) -> FundIncomeFigure:
        yield_percent = row.seven_day_yield_percent
        return cls(date=row.income_date, income_per_10k=str(row.income_per_10k),
                   seven_day_yield=None if yield_percent is None else str(yield_percent))


@strawberry.type(description="A money-market fund distributed on the platform; one unit is one fen.")
class Fund:
    row: strawberry.Private[product.Fund]
    id: str
    name: str

    @classmethod
    def of(cls, row: product.Fund) -> Fund:
        return cls(row=row, id=row.fund_id, name=row.name)

    @strawberry.field(description="Annualized 7-day yield in percent (3 decimals, half-up) from the published "
                                  "figures of the 7 days ending on `date`; an error if any is missing.")
    async def seven_day_yield(self, info: Info, date: date) -> str:
        return str(await context_of(info).run(product.seven_day_yield, self.row.fund_id, date))

    @strawberry.field(description=f"Published daily figures from `from` to `to` (at most "
                                  f"{product.figures_days_max} days), in date order.")
    async def daily_figures(self, info: Info, from_: Annotated[date, strawberry.argument(name="from")],
                            to: date | None = None) -> list[FundIncomeFigure]:
        rows = await context_of(info).run(product.income_figures, self.row.fund_id, from_, to or from_)
        return [FundIncomeFigure.of(row) for row in rows]

    @strawberry.field(description="Units held by all customers (not shown to holders).")
    async def holders_total(self, info: Info) -> Money:
        require_role(info, *_NON_HOLDERS)
        total = await context_of(info).run(product.holders_total, self.row.fund_id)
        return Money(amount=MinorUnits(total), currency=chart.currency)


@strawberry.type(description="One day's income credited to a holding, as new units.")
class FundHoldingIncome:
    date: date
    income: Money
    transaction_id: strawberry.ID
    cursor: str


@strawberry.type(description="A customer's units of a fund.")
class FundHolding:
    row: strawberry.Private[product.Holding]
    customer_id: str
    fund_id: str
    balance: Money
    accounts: list[ProductAccount] = strawberry.field(description="The holding's own account: the customer's units.")

    @classmethod
    def of(cls, row: product.Holding) -> FundHolding:
        return cls(row=row, customer_id=row.customer_id, fund_id=row.fund_id,
                   balance=Money(amount=MinorUnits(row.balance_fen), currency=chart.currency),
                   accounts=product_accounts((AccountRole.HOLDING, product.holding_account(row.fund_id,
                                                                                           row.customer_id))))

    @strawberry.field
    async def account(self, info: Info) -> Account:
        return Account.of(await context_of(info).load(loaders.accounts_by_id, self.row.account_id))

    @strawberry.field(description="Daily income, newest first; pass the last item's cursor as `after`.")
    async def income_history(self, info: Info, first: int | None = None,
                             after: str | None = None) -> list[FundHoldingIncome]:
        limit = min(page_size(info, first), product.income_history_page_max)
        if limit == 0:
            return []
        before = _cursor_version(after)
        rows = await context_of(info).run(product.income_history, self.row.customer_id, self.row.fund_id,
                                          limit=limit, before_version=before)
        return [FundHoldingIncome(date=row.income_date,
                                  income=Money(amount=MinorUnits(row.income_fen), currency=chart.currency),
                                  transaction_id=strawberry.ID(str(row.transaction_id)),
                                  cursor=str(row.account_version)) for row in rows]


def _cursor_version(after: str | None) -> int | None:
    if after is None:
        return None
    if not after.isascii() or not after.isdigit() or len(after) > 19:
        raise ValidationError(f"after must be a cursor from incomeHistory, got {after[:40]!r}", field="after")
    return int(after)
