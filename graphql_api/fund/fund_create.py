"""`createFund` (admin): a fund and its accounts; idempotent on the same id and name."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.errors import error_result, result_union
from graphql_api.fund.errors import FundExists
from graphql_api.fund.types import Fund
from ledger.errors import LedgerError
from ledger.products import fund as product
from ledger.tokens import Role

__all__ = ["CreateFundInput", "FundCreated", "CreateFundResult", "FundCreateMutation"]


@strawberry.input
class CreateFundInput:
    fund_id: str
    name: str


@strawberry.type(description="The fund; `created` is false when it existed with the same name.")
class FundCreated:
    fund: Fund
    created: bool


CreateFundResult = result_union("CreateFundResult", FundCreated, FundExists)


@strawberry.type
class FundCreateMutation:
    @strawberry.mutation(description="Create a money-market fund (admin).")
    async def create_fund(self, info: Info, input: CreateFundInput) -> CreateFundResult:
        try:
            require_role(info, Role.ADMIN)
            row, created = await context_of(info).run(product.create_fund, input.fund_id, input.name)
            return FundCreated(fund=Fund.of(row), created=created)
        except LedgerError as exc:
            return error_result(exc, CreateFundResult)
