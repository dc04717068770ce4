"""`onboardSupplier`: Open a supplier's payable, never below zero (idempotent)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import ONBOARDERS, Onboarded
from ledger.errors import LedgerError
from ledger.products import onboarding

__all__ = ["OnboardSupplierInput", "SupplierOnboarded", "OnboardSupplierResult", "SupplierOnboardMutation"]


@strawberry.input
class OnboardSupplierInput:
    supplier_id: str


@strawberry.type(description="The supplier's payable; created is false when it existed.")
class SupplierOnboarded(Onboarded):
    pass


OnboardSupplierResult = result_union("OnboardSupplierResult", SupplierOnboarded)


@strawberry.type
class SupplierOnboardMutation:
    @strawberry.mutation(description="Open a supplier's payable, never below zero (idempotent).")
    async def onboard_supplier(self, info: Info, input: OnboardSupplierInput) -> OnboardSupplierResult:
        try:
            require_role(info, *ONBOARDERS)
            row = await run_db(info, onboarding.onboard_supplier, input.supplier_id)
            return SupplierOnboarded(**Onboarded.fields(row))
        except LedgerError as exc:
            return error_result(exc, OnboardSupplierResult)
