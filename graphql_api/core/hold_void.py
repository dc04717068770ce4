"""`voidHold`: release a hold's reservation."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.core.gather import gatherer_of
from graphql_api.core.hold_create import load_hold
from graphql_api.core.transaction_post import POSTERS, posted_transaction
from graphql_api.core.types import Hold, Transaction, parse_id
from graphql_api.errors import error_result, result_union
from ledger.errors import LedgerError
from ledger.posting import VoidHold

__all__ = ["VoidHoldInput", "HoldVoided", "VoidHoldResult", "HoldVoidMutation"]


@strawberry.input
class VoidHoldInput:
    idempotency_key: str
    hold_id: strawberry.ID
    description: str = ""


@strawberry.type
class HoldVoided:
    hold: Hold
    transaction: Transaction
    replayed: bool


VoidHoldResult = result_union("VoidHoldResult", HoldVoided)


@strawberry.type
class HoldVoidMutation:
    @strawberry.mutation(description="Void a pending (or expired) hold.")
    async def void_hold(self, info: Info, input: VoidHoldInput) -> VoidHoldResult:
        try:
            require_role(info, *POSTERS)
            hold_id = parse_id(input.hold_id, "holdId")
            request = VoidHold(input.idempotency_key, hold_id, description=input.description)
            posted = await gatherer_of(context_of(info).state).post(request)
            return HoldVoided(hold=await load_hold(info, hold_id),
                              transaction=await posted_transaction(info, posted),
                              replayed=posted.replayed)
        except LedgerError as exc:
            return error_result(exc, VoidHoldResult)
