"""`createHold`: reserve funds (a pending transaction) until posted, voided or expired."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.core import loaders
from graphql_api.core.gather import gatherer_of
from graphql_api.core.inputs import EntryInput, legs_of
from graphql_api.core.transaction_post import POSTERS
from graphql_api.core.types import Hold
from graphql_api.errors import error_result, result_union
from graphql_api.scalars import JSON, DateTime, json_object
from ledger.errors import LedgerError
from ledger.posting import Hold as HoldRequest

__all__ = ["CreateHoldInput", "HoldCreated", "CreateHoldResult", "HoldCreateMutation", "load_hold"]


@strawberry.input
class CreateHoldInput:
    idempotency_key: str
    kind: str
    entries: list[EntryInput]
    description: str = ""
    effective_at: DateTime | None = None
    metadata: JSON | None = None
    expires_at: DateTime | None = strawberry.field(
        default=None, description="At most 30 days ahead; default 30 days.")


@strawberry.type
class HoldCreated:
    hold: Hold
    replayed: bool


CreateHoldResult = result_union("CreateHoldResult", HoldCreated)


async def load_hold(info: Info, hold_id: int) -> Hold:
    return Hold.of(await context_of(info).load(loaders.holds_by_id, hold_id))


@strawberry.type
class HoldCreateMutation:
    @strawberry.mutation(description="Reserve funds: the legs go to the pending layer until the hold resolves.")
    async def create_hold(self, info: Info, input: CreateHoldInput) -> CreateHoldResult:
        try:
            require_role(info, *POSTERS)
            request = HoldRequest(input.idempotency_key, input.kind, legs_of(input.entries),
                                  description=input.description, effective_at=input.effective_at,
                                  metadata=json_object(input.metadata),
                                  expires_at=input.expires_at)
            posted = await gatherer_of(context_of(info).state).post(request)
            return HoldCreated(hold=await load_hold(info, posted.transaction_id), replayed=posted.replayed)
        except LedgerError as exc:
            return error_result(exc, CreateHoldResult)

