"""`onboardCustomer`: Open a customer's wallet, never below zero (idempotent)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import ONBOARDERS, Onboarded
from ledger.errors import LedgerError
from ledger.products import onboarding

__all__ = ["OnboardCustomerInput", "CustomerOnboarded", "OnboardCustomerResult", "CustomerOnboardMutation"]


@strawberry.input
class OnboardCustomerInput:
    customer_id: str


@strawberry.type(description="The customer's wallet; created is false when it existed.")
class CustomerOnboarded(Onboarded):
    pass


OnboardCustomerResult = result_union("OnboardCustomerResult", CustomerOnboarded)


@strawberry.type
class CustomerOnboardMutation:
    @strawberry.mutation(description="Open a customer's wallet, never below zero (idempotent).")
    async def onboard_customer(self, info: Info, input: OnboardCustomerInput) -> OnboardCustomerResult:
        try:
            require_role(info, *ONBOARDERS)
            row = await run_db(info, onboarding.onboard_customer, input.customer_id)
            return CustomerOnboarded(**Onboarded.fields(row))
        except LedgerError as exc:
            return error_result(exc, OnboardCustomerResult)
