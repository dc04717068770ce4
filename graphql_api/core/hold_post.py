"""`postHold`: post a hold in full, or (two-leg holds) in part; the rest is released."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.core.gather import gatherer_of
from graphql_api.core.hold_create import load_hold
from graphql_api.core.transaction_post import POSTERS, posted_transaction
from graphql_api.core.types import Hold, Transaction, parse_id
from graphql_api.errors import error_result, result_union
from graphql_api.scalars import MinorUnits
from ledger.errors import LedgerError
from ledger.posting import PostHold

__all__ = ["PostHoldInput", "HoldPosted", "PostHoldResult", "HoldPostMutation"]


@strawberry.input
class PostHoldInput:
    idempotency_key: str
    hold_id: strawberry.ID
    amount: MinorUnits | None = strawberry.field(default=None, description="Omit to post the whole hold.")
    description: str = ""


@strawberry.type
class HoldPosted:
    hold: Hold
    transaction: Transaction
    replayed: bool


PostHoldResult = result_union("PostHoldResult", HoldPosted)


@strawberry.type
class HoldPostMutation:
    @strawberry.mutation(description="Post a pending hold, in full or in part.")
    async def post_hold(self, info: Info, input: PostHoldInput) -> PostHoldResult:
        try:
            require_role(info, *POSTERS)
            hold_id = parse_id(input.hold_id, "holdId")
            request = PostHold(input.idempotency_key, hold_id, amount=input.amount, description=input.description)
            posted = await gatherer_of(context_of(info).state).post(request)
            return HoldPosted(hold=await load_hold(info, hold_id),
                              transaction=await posted_transaction(info, posted),
                              replayed=posted.replayed)
        except LedgerError as exc:
            return error_result(exc, PostHoldResult)
