"""`createAccount` (admin): idempotent on the same attributes."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.core.types import Account, AccountType
from graphql_api.errors import error_result, result_union
from graphql_api.scalars import JSON, MinorUnits, json_object
from ledger import accounts as core_accounts
from ledger.errors import LedgerError
from ledger.tokens import Role

__all__ = ["CreateAccountInput", "AccountCreated", "CreateAccountResult", "AccountCreateMutation"]


@strawberry.input
class CreateAccountInput:
    code: str
    name: str
    type: AccountType
    currency: str = "CNY"
    holder_id: str | None = None
    min_balance: MinorUnits | None = strawberry.field(
        default=None, description="Lowest allowed balance on the normal side (0 for a wallet); null: unbounded.")
    max_balance: MinorUnits | None = None
    metadata: JSON | None = None
    contra: bool = strawberry.field(default=False, description="Takes the side opposite to its type's.")


@strawberry.type(description="The account; `created` is false when it existed with the same attributes.")
class AccountCreated:
    account: Account
    created: bool


CreateAccountResult = result_union("CreateAccountResult", AccountCreated)


@strawberry.type
class AccountCreateMutation:
    @strawberry.mutation(description="Create an account (admin).")
    async def create_account(self, info: Info, input: CreateAccountInput) -> CreateAccountResult:
        try:
            require_role(info, Role.ADMIN)
            new = core_accounts.NewAccount(
                code=input.code, name=input.name, type=input.type,
                currency=input.currency, holder_id=input.holder_id, min_balance=input.min_balance,
                max_balance=input.max_balance, metadata=json_object(input.metadata),
                contra=input.contra)
            row, created = await context_of(info).run(core_accounts.create_account, new)
            return AccountCreated(account=Account.of(row), created=created)
        except LedgerError as exc:
            return error_result(exc, CreateAccountResult)
