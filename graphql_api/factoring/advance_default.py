"""`defaultAdvance`: past due and unpaid: what is still owed moves to the supplier's recourse receivable."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import Money, parse_id
from graphql_api.errors import error_result, result_union
from graphql_api.factoring.types import FACTORING_ERRORS, POSTERS, Advance, money
from graphql_api.scalars import DateTime
from ledger.errors import LedgerError
from ledger.products import factoring as product

__all__ = ["DefaultAdvanceInput", "AdvanceDefaulted", "DefaultAdvanceResult", "AdvanceDefaultMutation"]


@strawberry.input
class DefaultAdvanceInput:
    idempotency_key: str
    advance_id: strawberry.ID
    effective_at: DateTime | None = strawberry.field(
        default=None, description="When it defaulted (default now): an offset, not ahead of now, outside closed "
                                  "periods, on a business day after the invoice's due date and not before the day "
                                  "the advance's fee is accrued through.")


@strawberry.type(description="The defaulted advance and what moved to recourse.")
class AdvanceDefaulted:
    advance: Advance
    principal_to_recourse: Money
    fee_to_recourse: Money
    transaction_id: strawberry.ID
    replayed: bool


DefaultAdvanceResult = result_union("DefaultAdvanceResult", AdvanceDefaulted, *FACTORING_ERRORS)


@strawberry.type
class AdvanceDefaultMutation:
    @strawberry.mutation(description="Default an overdue advance: unpaid principal and fee become recourse "
                                     "receivable, recovered from the supplier's later invoice payments.")
    async def default_advance(self, info: Info, input: DefaultAdvanceInput) -> DefaultAdvanceResult:
        try:
            require_role(info, *POSTERS)
            done = await run_db(info, product.default_advance, parse_id(input.advance_id, "advanceId"),
                                idempotency_key=input.idempotency_key, effective_at=input.effective_at)
            return AdvanceDefaulted(advance=Advance.of(done.advance),
                                    principal_to_recourse=money(done.principal_to_recourse_fen),
                                    fee_to_recourse=money(done.fee_to_recourse_fen),
                                    transaction_id=strawberry.ID(str(done.transaction_id)), replayed=done.replayed)
        except LedgerError as exc:
            return error_result(exc, DefaultAdvanceResult)
