"""`settleMerchant`: pay out a merchant's whole available balance, chargebacks netted first."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import Money
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import POSTERS, BankNotFound, NotOnboarded, money, optional_id
from ledger.errors import LedgerError
from ledger.products import payments

__all__ = ["SettleMerchantInput", "MerchantSettled", "SettleMerchantResult", "MerchantSettleMutation"]


@strawberry.input
class SettleMerchantInput:
    idempotency_key: str
    merchant_id: str
    bank: str


@strawberry.type(description="Dr merchant / Cr chargeback receivable / Cr reserve:bank; no transaction when "
                             "the merchant had nothing available.")
class MerchantSettled:
    transaction_id: strawberry.ID | None
    replayed: bool
    merchant_id: str
    bank: str
    paid_out: Money
    chargebacks_recovered: Money


SettleMerchantResult = result_union("SettleMerchantResult", MerchantSettled, NotOnboarded, BankNotFound)


@strawberry.type
class MerchantSettleMutation:
    @strawberry.mutation(description="Pay out the merchant's available balance from the bank's reserve, "
                                     "recovering chargebacks it owes first.")
    async def settle_merchant(self, info: Info, input: SettleMerchantInput) -> SettleMerchantResult:
        try:
            require_role(info, *POSTERS)
            done = await run_db(info, payments.settle_merchant, idempotency_key=input.idempotency_key,
                                merchant_id=input.merchant_id, bank=input.bank)
            return MerchantSettled(transaction_id=optional_id(done.transaction_id), replayed=done.replayed,
                                   merchant_id=done.merchant_id, bank=done.bank, paid_out=money(done.paid_out_fen),
                                   chargebacks_recovered=money(done.chargebacks_recovered_fen))
        except LedgerError as exc:
            return error_result(exc, SettleMerchantResult)
