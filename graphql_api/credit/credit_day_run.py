"""`runCreditDay`: the daily job for a date (idempotent), or every date from `fromDate`."""

from __future__ import annotations

import datetime
from datetime import date

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.credit.types import CREDIT_OPERATORS, CreditDay
from graphql_api.errors import error_result, result_union
from ledger.errors import LedgerError
from ledger.products import credit_day

__all__ = ["RunCreditDayInput", "CreditDaysRun", "RunCreditDayResult", "CreditDayRunMutation"]


@strawberry.input
class RunCreditDayInput:
    date: date
    from_date: datetime.date | None = strawberry.field(  # in this class `date` is the field
        default=None, description="Run every date from this one to `date`, in order (catching up).")


@strawberry.type(description="What each date's run posted.")
class CreditDaysRun:
    days: list[CreditDay]


RunCreditDayResult = result_union("RunCreditDayResult", CreditDaysRun)


def _run(conn, first: date, last: date) -> list[credit_day.DayReport]:  # type: ignore[no-untyped-def]
    return credit_day.run_credit_days(conn, first, last, progress=None)


@strawberry.type
class CreditDayRunMutation:
    @strawberry.mutation(description="Bill what fell due, charge late fees, provision by bucket and write off "
                                     "past 180 days, for a business date; a second run posts nothing.")
    async def run_credit_day(self, info: Info, input: RunCreditDayInput) -> RunCreditDayResult:
        try:
            require_role(info, *CREDIT_OPERATORS)
            reports = await context_of(info).run(_run, input.from_date or input.date, input.date)
            return CreditDaysRun(days=[CreditDay.of(r) for r in reports])
        except LedgerError as exc:
            return error_result(exc, RunCreditDayResult)
