"""`topUp`: a bank confirmed a customer's payment into the wallet (Dr clearing:bank / Cr wallet)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import Money
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import POSTERS, NotOnboarded, money
from graphql_api.scalars import DateTime, MinorUnits
from ledger.errors import LedgerError
from ledger.products import payments

__all__ = ["TopUpInput", "ToppedUp", "TopUpResult", "WalletTopUpMutation"]


@strawberry.input
class TopUpInput:
    idempotency_key: str
    customer_id: str
    bank: str
    amount: MinorUnits
    effective_at: DateTime | None = strawberry.field(
        default=None, description="When the bank received it (default now): an offset, not ahead of now, outside "
                                  "closed periods.")


@strawberry.type(description="Dr clearing:bank / Cr wallet.")
class ToppedUp:
    transaction_id: strawberry.ID
    replayed: bool
    customer_id: str
    bank: str
    amount: Money


TopUpResult = result_union("TopUpResult", ToppedUp, NotOnboarded)


@strawberry.type
class WalletTopUpMutation:
    @strawberry.mutation(description="Credit a customer's wallet with a top-up a bank confirmed.")
    async def top_up(self, info: Info, input: TopUpInput) -> TopUpResult:
        try:
            require_role(info, *POSTERS)
            done = await run_db(info, payments.top_up, idempotency_key=input.idempotency_key,
                                customer_id=input.customer_id, bank=input.bank, amount_fen=input.amount,
                                effective_at=input.effective_at)
            return ToppedUp(transaction_id=strawberry.ID(str(done.transaction_id)), replayed=done.replayed,
                            customer_id=done.customer_id, bank=done.bank, amount=money(done.amount_fen))
        except LedgerError as exc:
            return error_result(exc, TopUpResult)
