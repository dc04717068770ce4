"""`setAccountStatus` (admin): freeze, close or reopen an account, with a reason.

The transitions and what closing needs are the database's (sql/functions/account_lifecycle.sql);
every refusal is a typed error and writes nothing. Asking for the status an account already has
writes nothing and answers `changed: false`.
"""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.core.types import Account, AccountStatus
from graphql_api.errors import LedgerErrorType, error_result, register_error, result_union
from ledger import account_lifecycle as core_lifecycle
from ledger import errors as core_errors
from ledger.errors import LedgerError
from ledger.tokens import Role

__all__ = ["SetAccountStatusInput", "AccountStatusSet", "SetAccountStatusResult", "AccountStatusMutation",
           "AccountNotEmpty", "StatusTransitionRefused"]


@strawberry.type(description="An account is closed only with a zero posted balance and no open hold.")
class AccountNotEmpty(LedgerErrorType):
    details: JSON


@strawberry.type(description="The account may not go from its status to the one asked for "
                             "(a CLOSED account is made ACTIVE before it is FROZEN).")
class StatusTransitionRefused(LedgerErrorType):
    details: JSON


register_error(core_errors.AccountNotEmpty, AccountNotEmpty)
register_error(core_errors.StatusTransitionRefused, StatusTransitionRefused)


@strawberry.input
class SetAccountStatusInput:
    account_code: str
    status: AccountStatus
    reason: str = strawberry.field(description="Why (1 to 500 characters); kept in the account's statusHistory.")


@strawberry.type(description="The account after the change; `changed` is false when it already had the status.")
class AccountStatusSet:
    account: Account
    changed: bool


SetAccountStatusResult = result_union("SetAccountStatusResult", AccountStatusSet, AccountNotEmpty,
                                      StatusTransitionRefused)


@strawberry.type
class AccountStatusMutation:
    @strawberry.mutation(description="Freeze, close or reopen an account (admin).")
    async def set_account_status(self, info: Info, input: SetAccountStatusInput) -> SetAccountStatusResult:
        try:
            require_role(info, Role.ADMIN)
            row, changed = await context_of(info).run(core_lifecycle.set_status, input.account_code,
                                                      input.status.core, input.reason)
            return AccountStatusSet(account=Account.of(row), changed=changed)
        except LedgerError as exc:
            return error_result(exc, SetAccountStatusResult)
