"""`writeOffChargeback`: give up on what a merchant owes for chargebacks (Dr loss / Cr receivable)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import Money
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import POSTERS, NotOnboarded, money
from graphql_api.scalars import MinorUnits
from ledger.errors import LedgerError
from ledger.products import payments

__all__ = ["WriteOffChargebackInput", "ChargebackWrittenOff", "WriteOffChargebackResult",
           "ChargebackWriteOffMutation"]


@strawberry.input
class WriteOffChargebackInput:
    idempotency_key: str
    merchant_id: str
    amount: MinorUnits | None = strawberry.field(default=None, description="Omit to write off all it owes.")


@strawberry.type(description="Dr chargeback loss / Cr chargeback receivable:merchant.")
class ChargebackWrittenOff:
    transaction_id: strawberry.ID
    replayed: bool
    merchant_id: str
    amount: Money


WriteOffChargebackResult = result_union("WriteOffChargebackResult", ChargebackWrittenOff, NotOnboarded)


@strawberry.type
class ChargebackWriteOffMutation:
    @strawberry.mutation(description="Write off chargebacks a merchant owes and will not repay.")
    async def write_off_chargeback(self, info: Info, input: WriteOffChargebackInput) -> WriteOffChargebackResult:
        try:
            require_role(info, *POSTERS)
            done = await run_db(info, payments.write_off_chargeback, idempotency_key=input.idempotency_key,
                                merchant_id=input.merchant_id, amount_fen=input.amount)
            return ChargebackWrittenOff(transaction_id=strawberry.ID(str(done.transaction_id)),
                                        replayed=done.replayed, merchant_id=done.merchant_id,
                                        amount=money(done.amount_fen))
        except LedgerError as exc:
            return error_result(exc, WriteOffChargebackResult)
