"""`closePeriod` (admin): nothing may be posted effective at or before `until` afterwards."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.errors import error_result, result_union
from graphql_api.scalars import DateTime
from ledger.errors import LedgerError
from ledger.periods import close_period
from ledger.tokens import Role

__all__ = ["ClosePeriodInput", "BooksClosed", "ClosePeriodResult", "PeriodCloseMutation"]


@strawberry.input
class ClosePeriodInput:
    until: DateTime


@strawberry.type(description="The books are closed up to and including `closedUntil`.")
class BooksClosed:
    closed_until: datetime


ClosePeriodResult = result_union("ClosePeriodResult", BooksClosed)


@strawberry.type
class PeriodCloseMutation:
    @strawberry.mutation(description="Close the books up to a time (admin); waits for postings under way.")
    async def close_period(self, info: Info, input: ClosePeriodInput) -> ClosePeriodResult:
        try:
            require_role(info, Role.ADMIN)
            until = await context_of(info).run(close_period, input.until)
            return BooksClosed(closed_until=until)
        except LedgerError as exc:
            return error_result(exc, ClosePeriodResult)
