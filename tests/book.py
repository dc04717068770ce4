"""A small book of accounts for core tests, built through the public API."""

from __future__ import annotations

from typing import Any

import psycopg

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.posting import Leg, Transfer, post_one

BANK = "assets:bank:icbc"
WALLET_U1 = "liabilities:wallets:U1"
WALLET_U2 = "liabilities:wallets:U2"
MERCHANT_M1 = "liabilities:merchants:M1"
USD_BANK = "assets:bank:usd"
CAPPED = "liabilities:wallets:CAP"


def open_book(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Accounts by code -> id: a bank, two wallets that may not go below zero, a merchant,
    a USD bank and a wallet capped at 1000."""
    specs = [
        NewAccount(BANK, "ICBC", AccountType.ASSET, "CNY"),
        NewAccount(WALLET_U1, "Wallet U1", AccountType.LIABILITY, "CNY", holder_id="U1", min_balance=0),
        NewAccount(WALLET_U2, "Wallet U2", AccountType.LIABILITY, "CNY", holder_id="U2", min_balance=0),
        NewAccount(MERCHANT_M1, "Merchant M1", AccountType.LIABILITY, "CNY", holder_id="M1"),
        NewAccount(USD_BANK, "USD bank", AccountType.ASSET, "USD"),
        NewAccount(CAPPED, "Capped", AccountType.LIABILITY, "CNY", min_balance=0, max_balance=1000),
    ]
    return {spec.code: create_account(conn, spec)[0].id for spec in specs}


def top_up(conn: psycopg.Connection[Any], wallet: str, amount: int, key: str) -> int:
    return post_one(conn, Transfer(key, "wallet.top_up", [
        Leg(BANK, Side.DEBIT, amount), Leg(wallet, Side.CREDIT, amount)])).transaction_id


def spend(wallet: str, amount: int, key: str, to: str = MERCHANT_M1) -> Transfer:
    return Transfer(key, "payment.direct", [Leg(wallet, Side.DEBIT, amount), Leg(to, Side.CREDIT, amount)])
