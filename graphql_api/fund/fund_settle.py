"""`settleFund` (operator, admin): net cash with the fund manager through a client-money reserve."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.core.transaction_post import POSTERS
from graphql_api.core.types import Money, Transaction
from graphql_api.errors import error_result, result_union
from graphql_api.fund.errors import FundNotFound
from graphql_api.fund.types import transaction_of
from graphql_api.scalars import MinorUnits
from ledger.errors import LedgerError
from ledger.products import chart
from ledger.products import fund as product

__all__ = ["SettleFundInput", "FundSettled", "SettleFundResult", "FundSettleMutation"]


@strawberry.input
class SettleFundInput:
    idempotency_key: str
    fund_id: str
    bank: str = strawberry.field(description="The partner bank whose client-money reserve pays or receives.")


@strawberry.type(description="Subscriptions remitted and redemptions recovered; no transaction when none were owed.")
class FundSettled:
    transaction: Transaction | None
    replayed: bool
    subscriptions: Money
    redemptions: Money


SettleFundResult = result_union("SettleFundResult", FundSettled, FundNotFound)


@strawberry.type
class FundSettleMutation:
    @strawberry.mutation(description="Remit subscriptions owed to the fund manager and recover pre-funded "
                                     "redemptions, net, in one transaction.")
    async def settle_fund(self, info: Info, input: SettleFundInput) -> SettleFundResult:
        try:
            require_role(info, *POSTERS)
            settled = await context_of(info).run(product.settle, idempotency_key=input.idempotency_key,
                                                 fund_id=input.fund_id, bank=input.bank)
            transaction = (await transaction_of(info, settled.transaction_id)
                           if settled.transaction_id is not None else None)
            return FundSettled(transaction=transaction, replayed=settled.replayed,
                               subscriptions=Money(amount=MinorUnits(settled.subscriptions_fen),
                                                   currency=chart.currency),
                               redemptions=Money(amount=MinorUnits(settled.redemptions_fen), currency=chart.currency))
        except LedgerError as exc:
            return error_result(exc, SettleFundResult)
