"""`onboardMerchant`: a merchant's payable and chargeback receivable, and its terms."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import ONBOARDERS, Onboarded
from ledger.errors import LedgerError
from ledger.products import onboarding

__all__ = ["OnboardMerchantInput", "MerchantOnboarded", "OnboardMerchantResult", "MerchantOnboardMutation"]


@strawberry.input
class OnboardMerchantInput:
    merchant_id: str
    fee_rate: str = strawberry.field(description='Fee as a decimal fraction of the captured amount, e.g. "0.006".')
    refund_fee_pro_rata: bool = strawberry.field(
        default=True, description="Whether a refund gives the merchant back the matching share of the fee.")


@strawberry.type(description="The merchant's accounts and current terms; created is false when nothing was new.")
class MerchantOnboarded(Onboarded):
    fee_rate: str
    refund_fee_pro_rata: bool


OnboardMerchantResult = result_union("OnboardMerchantResult", MerchantOnboarded)


@strawberry.type
class MerchantOnboardMutation:
    @strawberry.mutation(description="Open a merchant's accounts and record its terms (idempotent; new terms "
                                     "apply to payments authorized afterwards).")
    async def onboard_merchant(self, info: Info, input: OnboardMerchantInput) -> OnboardMerchantResult:
        try:
            require_role(info, *ONBOARDERS)
            row = await run_db(info, onboarding.onboard_merchant, input.merchant_id, input.fee_rate,
                               refund_fee_pro_rata=input.refund_fee_pro_rata)
            assert row.terms is not None, "a merchant always has terms once onboarded"
            return MerchantOnboarded(**Onboarded.fields(row), fee_rate=format(row.terms.fee_rate, "f"),
                                     refund_fee_pro_rata=row.terms.refund_fee_pro_rata)
        except LedgerError as exc:
            return error_result(exc, OnboardMerchantResult)
