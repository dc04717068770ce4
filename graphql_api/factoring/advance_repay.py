"""`repayAdvance`: early repayment by the supplier: the fee to date first, then principal."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import Money, parse_id
from graphql_api.errors import error_result, result_union
from graphql_api.factoring.types import FACTORING_ERRORS, POSTERS, Advance, money
from graphql_api.scalars import DateTime, MinorUnits
from ledger.errors import LedgerError
from ledger.products import factoring as product

__all__ = ["RepayAdvanceInput", "AdvanceRepaid", "RepayAdvanceResult", "AdvanceRepayMutation"]


@strawberry.input
class RepayAdvanceInput:
    idempotency_key: str
    advance_id: strawberry.ID
    amount: MinorUnits
    effective_at: DateTime | None = strawberry.field(
        default=None, description="When it was paid (default now): an offset, not ahead of now, outside closed "
                                  "periods, not before the day the advance's fee is accrued through.")


@strawberry.type(description="The advance after the repayment and how the amount was split.")
class AdvanceRepaid:
    advance: Advance
    amount: Money
    fee: Money
    principal: Money
    transaction_id: strawberry.ID
    replayed: bool


RepayAdvanceResult = result_union("RepayAdvanceResult", AdvanceRepaid, *FACTORING_ERRORS)


@strawberry.type
class AdvanceRepayMutation:
    @strawberry.mutation(description="The supplier repays an advance early (fee to date, then principal).")
    async def repay_advance(self, info: Info, input: RepayAdvanceInput) -> RepayAdvanceResult:
        try:
            require_role(info, *POSTERS)
            done = await run_db(info, product.repay_advance, parse_id(input.advance_id, "advanceId"), input.amount,
                                idempotency_key=input.idempotency_key, effective_at=input.effective_at)
            return AdvanceRepaid(advance=Advance.of(done.advance), amount=money(done.amount_fen),
                                 fee=money(done.fee_fen), principal=money(done.principal_fen),
                                 transaction_id=strawberry.ID(str(done.transaction_id)), replayed=done.replayed)
        except LedgerError as exc:
            return error_result(exc, RepayAdvanceResult)
