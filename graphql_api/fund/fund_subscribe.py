"""`subscribeFund`: buy units with wallet money (never taking the wallet below zero)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.core.transaction_post import POSTERS
from graphql_api.core.types import Transaction
from graphql_api.errors import error_result, result_union
from graphql_api.fund.errors import FundDayDistributed, FundNotFound
from graphql_api.fund.types import FundHolding, transaction_of
from graphql_api.scalars import DateTime, MinorUnits
from ledger.errors import LedgerError
from ledger.products import fund as product

__all__ = ["SubscribeFundInput", "FundSubscribed", "SubscribeFundResult", "FundSubscribeMutation"]


@strawberry.input
class SubscribeFundInput:
    idempotency_key: str
    customer_id: str
    fund_id: str
    amount: MinorUnits
    effective_at: DateTime | None = strawberry.field(
        default=None, description="When it took effect (default now): an offset, not ahead of now, outside closed "
                                  "periods, on a business day whose income the fund has not published.")


@strawberry.type(description="The subscription's transaction and the holding after it.")
class FundSubscribed:
    transaction: Transaction
    replayed: bool
    holding: FundHolding


SubscribeFundResult = result_union("SubscribeFundResult", FundSubscribed, FundNotFound, FundDayDistributed)


@strawberry.type
class FundSubscribeMutation:
    @strawberry.mutation(description="Move money from the customer's wallet into fund units.")
    async def subscribe_fund(self, info: Info, input: SubscribeFundInput) -> SubscribeFundResult:
        try:
            require_role(info, *POSTERS)
            context = context_of(info)
            moved = await context.run(product.subscribe, idempotency_key=input.idempotency_key,
                                      customer_id=input.customer_id, fund_id=input.fund_id, amount_fen=input.amount,
                                      effective_at=input.effective_at)
            holding = await context.run(product.holding, moved.customer_id, moved.fund_id)
            return FundSubscribed(transaction=await transaction_of(info, moved.transaction_id),
                                  replayed=moved.replayed, holding=FundHolding.of(holding))
        except LedgerError as exc:
            return error_result(exc, SubscribeFundResult)
