"""`accrueFactoringFees`: every open advance's fee through a date, set-based; a date runs once."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import Money
from graphql_api.errors import error_result, result_union
from graphql_api.factoring.types import FACTORING_ERRORS, POSTERS, money
from ledger.errors import LedgerError
from ledger.products import factoring_accrual

__all__ = ["AccrueFactoringFeesInput", "FactoringFeesAccrued", "AccrueFactoringFeesResult", "FeeAccrueMutation"]


@strawberry.input(description="No idempotency key: each advance's accrual is keyed by advance and date, so "
                              "running a date again posts nothing.")
class AccrueFactoringFeesInput:
    date: date


@strawberry.type(description="What this run posted (zero when the date was already accrued).")
class FactoringFeesAccrued:
    date: date
    advances_accrued: int
    fee: Money
    batches: int


AccrueFactoringFeesResult = result_union("AccrueFactoringFeesResult", FactoringFeesAccrued, *FACTORING_ERRORS)


@strawberry.type
class FeeAccrueMutation:
    @strawberry.mutation(description="Accrue one day's fee (cumulative rounding) for every open advance.")
    async def accrue_factoring_fees(self, info: Info, input: AccrueFactoringFeesInput) -> AccrueFactoringFeesResult:
        try:
            require_role(info, *POSTERS)
            run = await run_db(info, factoring_accrual.accrue_factoring_fees, input.date, progress=None)
            return FactoringFeesAccrued(date=run.on, advances_accrued=run.advances_accrued, fee=money(run.fee_fen),
                                        batches=run.batches)
        except LedgerError as exc:
            return error_result(exc, AccrueFactoringFeesResult)
