"""The chart of accounts shared by the four businesses (see docs/rules.md).

Codes are colon paths whose first segment is the account type's plural, so a prefix is a
category that rolls up (`liabilities:wallets` is every customer wallet). Accounts belonging to
a customer, merchant or supplier carry its id as holder_id, which drives access control.
Product-specific accounts live in each product's own module, built with `ensure`.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ledger.accounts import Account, AccountType, NewAccount, create_account

__all__ = [
    "currency",
    "ensure",
    "wallet",
    "merchant_payable",
    "supplier_payable",
    "bank_reserve",
    "bank_clearing",
    "OWN_FUNDS",
    "PAID_IN_CAPITAL",
    "RETAINED_EARNINGS",
    "SUSPENSE",
    "ensure_platform_accounts",
]

currency = "CNY"

OWN_FUNDS = "assets:own_funds"
PAID_IN_CAPITAL = "equity:paid_in_capital"
RETAINED_EARNINGS = "equity:retained_earnings"
SUSPENSE = "liabilities:suspense"

_PLATFORM_ACCOUNTS = {
    OWN_FUNDS: ("Own funds at bank", AccountType.ASSET),
    PAID_IN_CAPITAL: ("Paid-in capital", AccountType.EQUITY),
    RETAINED_EARNINGS: ("Retained earnings", AccountType.EQUITY),
    SUSPENSE: ("Suspense: unidentified receipts", AccountType.LIABILITY),
}


def wallet(customer_id: str) -> str:
    return f"liabilities:wallets:{customer_id}"


def merchant_payable(merchant_id: str) -> str:
    return f"liabilities:merchants:{merchant_id}"


def supplier_payable(supplier_id: str) -> str:
    return f"liabilities:suppliers:{supplier_id}"


def bank_reserve(bank: str) -> str:
    """Client-money reserve at a partner bank."""
    return f"assets:reserves:{bank}"


def bank_clearing(bank: str) -> str:
    """Top-ups a bank confirmed and has not settled yet."""
    return f"assets:clearing:{bank}"


def ensure(
    conn: psycopg.Connection[Any], code: str, name: str, account_type: AccountType, *,
    holder_id: str | None = None, min_balance: int | None = None, max_balance: int | None = None,
    contra: bool = False, metadata: dict[str, Any] | None = None,
) -> Account:
    """The account with this code, created if missing (idempotent; same attributes required)."""
    account, _ = create_account(conn, NewAccount(
        code=code, name=name, type=account_type, currency=currency, holder_id=holder_id,
        min_balance=min_balance, max_balance=max_balance, contra=contra, metadata=metadata or {}))
    return account


def ensure_platform_accounts(conn: psycopg.Connection[Any]) -> None:
    for code, (name, account_type) in _PLATFORM_ACCOUNTS.items():
        ensure(conn, code, name, account_type)
