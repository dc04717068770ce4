"""`fund(id)` and `fundHolding(customerId, fundId)`."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of
from graphql_api.fund.types import Fund, FundHolding, can_see_customer
from ledger.products import fund as product

__all__ = ["FundQuery"]


@strawberry.type
class FundQuery:
    @strawberry.field(description="A fund by id, or null.")
    async def fund(self, info: Info, id: str) -> Fund | None:
        try:
            return Fund.of(await context_of(info).run(product.get_fund, id))
        except product.FundNotFound:
            return None

    @strawberry.field(description="A customer's holding of a fund, or null (holders see only their own).")
    async def fund_holding(self, info: Info, customer_id: str, fund_id: str) -> FundHolding | None:
        if not can_see_customer(info, customer_id):
            return None
        try:
            return FundHolding.of(await context_of(info).run(product.holding, customer_id, fund_id))
        except (product.HoldingNotFound, product.FundNotFound):
            return None
