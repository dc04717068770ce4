"""`setAccountLimits` (admin): the lowest and highest balance an account may reach.

New limits bind later postings, each judged in the direction it moves the balance
(sql/functions/check_limits.sql): a balance already past a new limit stands, and only postings
taking it further past are refused. Every version is kept (`Account.limitHistory`).
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.core.types import Account
from graphql_api.errors import error_result, result_union
from graphql_api.scalars import MinorUnits
from ledger import account_lifecycle as core_lifecycle
from ledger.errors import LedgerError
from ledger.tokens import Role

__all__ = ["SetAccountLimitsInput", "AccountLimitsSet", "SetAccountLimitsResult", "AccountLimitsMutation"]


@strawberry.input
class SetAccountLimitsInput:
    account_code: str
    min_balance: MinorUnits | None = strawberry.field(
        default=None, description="Lowest allowed balance on the normal side; null: unbounded.")
    max_balance: MinorUnits | None = strawberry.field(
        default=None, description="Highest allowed balance on the normal side; null: unbounded.")


@strawberry.type(description="The account with its new limits; `changed` is false when they were already so.")
class AccountLimitsSet:
    account: Account
    changed: bool


SetAccountLimitsResult = result_union("SetAccountLimitsResult", AccountLimitsSet)


@strawberry.type
class AccountLimitsMutation:
    @strawberry.mutation(description="Set an account's lowest and highest allowed balance (admin).")
    async def set_account_limits(self, info: Info, input: SetAccountLimitsInput) -> SetAccountLimitsResult:
        try:
            require_role(info, Role.ADMIN)
            row, changed = await context_of(info).run(core_lifecycle.set_limits, input.account_code,
                                                      input.min_balance, input.max_balance)
            return AccountLimitsSet(account=Account.of(row), changed=changed)
        except LedgerError as exc:
            return error_result(exc, SetAccountLimitsResult)
