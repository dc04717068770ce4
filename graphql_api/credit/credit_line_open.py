"""`openCreditLine`: open a customer's credit line or change its limit."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.credit.types import CREDIT_OPERATORS, CreditLine
from graphql_api.errors import error_result, result_union
from graphql_api.scalars import MinorUnits
from ledger.errors import LedgerError
from ledger.products import credit

__all__ = ["OpenCreditLineInput", "CreditLineOpened", "OpenCreditLineResult", "CreditLineOpenMutation"]


@strawberry.input
class OpenCreditLineInput:
    customer_id: str
    limit: MinorUnits


@strawberry.type(description="The credit line with its limit, what is used and what is available.")
class CreditLineOpened:
    credit_line: CreditLine


OpenCreditLineResult = result_union("OpenCreditLineResult", CreditLineOpened)


@strawberry.type
class CreditLineOpenMutation:
    @strawberry.mutation(description="Open a customer's credit line, or set a new limit (idempotent).")
    async def open_credit_line(self, info: Info, input: OpenCreditLineInput) -> OpenCreditLineResult:
        try:
            require_role(info, *CREDIT_OPERATORS)
            line = await context_of(info).run(credit.open_credit_line, input.customer_id, input.limit)
            return CreditLineOpened(credit_line=CreditLine.of(line))
        except LedgerError as exc:
            return error_result(exc, OpenCreditLineResult)
