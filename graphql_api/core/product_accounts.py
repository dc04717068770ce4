"""`ProductAccount`: one of the accounts a product record (a loan, an advance, a fund holding)
keeps its balances in, with the role it plays there, so that a client never derives codes itself.
"""

from __future__ import annotations

import enum

import strawberry

__all__ = ["AccountRole", "ProductAccount", "product_accounts"]


@strawberry.enum(description="What an account holds for the record listing it.")
class AccountRole(enum.Enum):
    PRINCIPAL = "principal"
    FEES = "fees"
    INTEREST = "interest"
    LATE_FEES = "late_fees"
    ALLOWANCE = "allowance"
    HOLDING = "holding"


@strawberry.type(description="One of a record's own accounts: its role and its code (read it with `account(code)`).")
class ProductAccount:
    role: AccountRole
    code: str


def product_accounts(*pairs: tuple[AccountRole, str]) -> list[ProductAccount]:
    return [ProductAccount(role=role, code=code) for role, code in pairs]
