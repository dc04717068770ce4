"""Wallet top-ups through a bank, and the bank's settlement of them into its client-money
reserve.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ledger.accounts import Account, AccountType, Side, get_account
from ledger.balances import balances_now
from ledger.errors import AccountNotFound
from ledger.money import parse_amount
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products.effective import parse_effective_at
from ledger.products.onboarding import parse_party_id
from ledger.products.payments.common import (
    advisory_lock,
    atomic,
    bank_accounts,
    leg_amount,
    parse_bank,
    parse_key,
    party_account,
    record_step,
    replayed_step,
)


@dataclass(frozen=True)
class TopUp:
    transaction_id: int
    replayed: bool
    customer_id: str
    bank: str
    amount_fen: int


@dataclass(frozen=True)
class TopUpSettlement:
    transaction_id: int | None  # None when there was nothing to settle
    replayed: bool
    bank: str
    amount_fen: int


def ensure_bank(conn: psycopg.Connection[Any], bank: str) -> tuple[Account, Account]:
    """The bank's clearing and client-money reserve accounts, created on its first top-up.

    Both are real money at the bank, so this creates them never below zero; accounts an admin
    (or the demo) made before are used as they are.
    """
    bank = parse_bank(bank)
    found = []
    for code, name in ((chart.bank_clearing(bank), f"Top-ups confirmed by {bank}, not settled"),
                       (chart.bank_reserve(bank), f"Client-money reserve at {bank}")):
        try:
            found.append(get_account(conn, code))
        except AccountNotFound:
            found.append(chart.ensure(conn, code, name, AccountType.ASSET, min_balance=0))
    return found[0], found[1]


def top_up(conn: psycopg.Connection[Any], *, idempotency_key: str, customer_id: str, bank: str,
           amount_fen: int | str, effective_at: datetime | None = None) -> TopUp:
    """The bank confirmed the customer's payment: Dr clearing:bank / Cr wallet.

    effective_at (default now) is when the bank received it, under ledger/products/effective.py.
    """
    idempotency_key = parse_key(idempotency_key)
    customer_id, bank = parse_party_id(customer_id, field="customerId"), parse_bank(bank)
    amount_fen = parse_amount(amount_fen)
    effective_at = parse_effective_at(effective_at)
    wallet = party_account(conn, chart.wallet(customer_id), "customer", customer_id)

    def work() -> TopUp:
        clearing, _ = ensure_bank(conn, bank)
        posted = post(conn, [Transfer(
            idempotency_key, "payment.top_up",
            [Leg(clearing.code, Side.DEBIT, amount_fen), Leg(wallet.code, Side.CREDIT, amount_fen)],
            description=f"Top-up of {customer_id} via {bank}", effective_at=effective_at,
            metadata={"customer_id": customer_id, "bank": bank})])[0]
        record_step(conn, posted.transaction_id, "top_up", bank=bank)
        return TopUp(posted.transaction_id, posted.replayed, customer_id, bank, amount_fen)

    return atomic(conn, work)


def settle_top_ups(conn: psycopg.Connection[Any], *, bank: str, idempotency_key: str | None = None
                   ) -> TopUpSettlement:
    """The bank settled: move everything in its clearing account into its reserve.

    Without a key, the key is derived from the clearing account's version, so a retry that finds
    nothing changed replays instead of settling twice.
    """
    bank = parse_bank(bank)
    if idempotency_key is not None:
        idempotency_key = parse_key(idempotency_key)

    def work() -> TopUpSettlement:
        advisory_lock(conn, "bank", bank)
        clearing, reserve = bank_accounts(conn, bank)
        now = balances_now(conn, [clearing.id])[clearing.id]
        key = idempotency_key if idempotency_key is not None else f"payment.settle_top_ups:{bank}:v{now.version}"
        replayed_id = replayed_step(conn, key, "settle_top_ups", bank=bank)
        if replayed_id is not None:
            amount = leg_amount(conn, replayed_id, reserve.id)
            return TopUpSettlement(replayed_id, True, bank, amount)
        amount = int(now.posted)
        if amount == 0:
            return TopUpSettlement(None, False, bank, 0)
        posted = post(conn, [Transfer(
            key, "payment.settle_top_ups",
            [Leg(reserve.code, Side.DEBIT, amount), Leg(clearing.code, Side.CREDIT, amount)],
            description=f"{bank} settled confirmed top-ups", metadata={"bank": bank})])[0]
        record_step(conn, posted.transaction_id, "settle_top_ups", bank=bank)
        return TopUpSettlement(posted.transaction_id, posted.replayed, bank, amount)

    return atomic(conn, work)
