"""`settleTopUps`: a bank settled the top-ups it confirmed (Dr reserve:bank / Cr clearing:bank)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import Money
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import POSTERS, BankNotFound, money, optional_id
from ledger.errors import LedgerError
from ledger.products import payments

__all__ = ["SettleTopUpsInput", "TopUpsSettled", "SettleTopUpsResult", "TopUpsSettleMutation"]


@strawberry.input
class SettleTopUpsInput:
    bank: str
    idempotency_key: str | None = strawberry.field(
        default=None, description="Omit to key the settlement on the clearing account's state.")


@strawberry.type(description="Everything in clearing moved into the reserve; no transaction when nothing was there.")
class TopUpsSettled:
    transaction_id: strawberry.ID | None
    replayed: bool
    bank: str
    amount: Money


SettleTopUpsResult = result_union("SettleTopUpsResult", TopUpsSettled, BankNotFound)


@strawberry.type
class TopUpsSettleMutation:
    @strawberry.mutation(description="Move a bank's confirmed top-ups from clearing into its client-money reserve.")
    async def settle_top_ups(self, info: Info, input: SettleTopUpsInput) -> SettleTopUpsResult:
        try:
            require_role(info, *POSTERS)
            done = await run_db(info, payments.settle_top_ups, bank=input.bank,
                                idempotency_key=input.idempotency_key)
            return TopUpsSettled(transaction_id=optional_id(done.transaction_id), replayed=done.replayed,
                                 bank=done.bank, amount=money(done.amount_fen))
        except LedgerError as exc:
            return error_result(exc, SettleTopUpsResult)
