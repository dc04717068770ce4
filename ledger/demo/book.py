"""The platform's own part of the demo book: its capital, two partner banks, three customers
with wallets, two merchants, a supplier; four months of backdated history (top-ups and their bank
settlement, card-less wallet payments with the merchant fee, merchant settlements, a merchant
paying its supplier), holds captured in part, voided and left open, and a reversed top-up.

Built only through the core API, with `demo:` idempotency keys and dates from the anchor, so
loading again replays and writes nothing new.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import psycopg

from ledger.accounts import AccountType, Side
from ledger.demo.anchor import ANCHOR_KEY, BANKS, CUSTOMERS, MERCHANTS, SUPPLIERS, demo_anchor, history_days
from ledger.posting import Hold, Leg, PostHold, Request, Reverse, Transfer, VoidHold, post, post_one
from ledger.products import chart

__all__ = ["platform", "parties", "history", "holds", "reversal"]

MERCHANT_FEES = "revenue:merchant_fees"
merchant_fee_per_mille = 6  # 0.6%, rounded half up to the fen
capital_fen = 5_000_000_000  # 50,000,000.00 CNY


def platform(conn: psycopg.Connection[Any]) -> None:
    chart.ensure_platform_accounts(conn)
    for bank, name in BANKS.items():
        chart.ensure(conn, chart.bank_reserve(bank), f"Client-money reserve at {name}", AccountType.ASSET)
        chart.ensure(conn, chart.bank_clearing(bank), f"Clearing: top-ups confirmed by {name}", AccountType.ASSET)
    chart.ensure(conn, MERCHANT_FEES, "Merchant fee income", AccountType.REVENUE)
    post_one(conn, Transfer(ANCHOR_KEY, "capital.paid_in", [
        Leg(chart.OWN_FUNDS, Side.DEBIT, capital_fen), Leg(chart.PAID_IN_CAPITAL, Side.CREDIT, capital_fen)],
        description="Paid-in capital", effective_at=demo_anchor(conn)))


def parties(conn: psycopg.Connection[Any]) -> None:
    for customer, name in CUSTOMERS.items():
        chart.ensure(conn, chart.wallet(customer), f"Wallet of {name}", AccountType.LIABILITY,
                     holder_id=customer, min_balance=0)
    for merchant, name in MERCHANTS.items():
        chart.ensure(conn, chart.merchant_payable(merchant), f"Payable to {name}", AccountType.LIABILITY,
                     holder_id=merchant, min_balance=0)
    for supplier, name in SUPPLIERS.items():
        chart.ensure(conn, chart.supplier_payable(supplier), f"Payable to {name}", AccountType.LIABILITY,
                     holder_id=supplier, min_balance=0)


def _fee(amount: int) -> int:
    return (amount * merchant_fee_per_mille + 500) // 1000


def _day(conn: psycopg.Connection[Any], anchor: datetime, day: int, rng: random.Random,
         wallets: dict[str, int], merchants: dict[str, int]) -> list[Request]:
    """One business day: top-ups, their settlement, payments, and weekly/monthly settlements."""
    at = anchor + timedelta(days=day, hours=rng.randint(1, 9), minutes=rng.randint(0, 59))
    key = f"demo:history:{day}"
    requests: list[Request] = []
    bank = "icbc" if day % 2 else "cmb"
    for customer in CUSTOMERS:
        if rng.random() < 0.25:
            amount = rng.choice([10000, 20000, 50000, 100000, 200000])
            wallets[customer] += amount
            requests.append(Transfer(f"{key}:topup:{customer}", "wallet.top_up", [
                Leg(chart.bank_clearing(bank), Side.DEBIT, amount), Leg(chart.wallet(customer), Side.CREDIT, amount)],
                description=f"Top-up via {BANKS[bank]}", effective_at=at))
            requests.append(Transfer(f"{key}:settle:{customer}", "wallet.top_up_settled", [
                Leg(chart.bank_reserve(bank), Side.DEBIT, amount), Leg(chart.bank_clearing(bank), Side.CREDIT, amount)],
                description=f"{BANKS[bank]} settled the top-up", effective_at=at + timedelta(hours=6)))
        if rng.random() < 0.4 and wallets[customer] > 5000:
            merchant = rng.choice(list(MERCHANTS))
            amount = min(wallets[customer], rng.randint(5, 400) * 100 - rng.choice([0, 1, 10]))
            fee = _fee(amount)
            wallets[customer] -= amount
            merchants[merchant] += amount - fee
            requests.append(Transfer(f"{key}:pay:{customer}", "payment.direct", [
                Leg(chart.wallet(customer), Side.DEBIT, amount), Leg(chart.merchant_payable(merchant), Side.CREDIT, amount),
                Leg(chart.merchant_payable(merchant), Side.DEBIT, fee), Leg(MERCHANT_FEES, Side.CREDIT, fee)],
                description=f"Payment to {MERCHANTS[merchant]}", effective_at=at + timedelta(minutes=30),
                metadata={"merchant": merchant, "fee_fen": fee}))
    if day % 7 == 6:
        for merchant, payable in merchants.items():
            if payable > 0:
                requests.append(Transfer(f"{key}:payout:{merchant}", "merchant.settle", [
                    Leg(chart.merchant_payable(merchant), Side.DEBIT, payable),
                    Leg(chart.bank_reserve("icbc"), Side.CREDIT, payable)],
                    description="Weekly settlement to the merchant's bank", effective_at=at + timedelta(hours=8)))
                merchants[merchant] = 0
    if day % 30 == 20 and merchants["M2001"] > 0:
        amount = merchants["M2001"] // 2
        merchants["M2001"] -= amount
        requests.append(Transfer(f"{key}:supplier", "supplier.invoice_paid", [
            Leg(chart.merchant_payable("M2001"), Side.DEBIT, amount), Leg(chart.supplier_payable("S3001"), Side.CREDIT, amount)],
            description="Green Tea House pays Huaxin's invoice", effective_at=at + timedelta(hours=7)))
        requests.append(Transfer(f"{key}:supplier_payout", "supplier.settle", [
            Leg(chart.supplier_payable("S3001"), Side.DEBIT, amount), Leg(chart.bank_reserve("cmb"), Side.CREDIT, amount)],
            description="Remit to Huaxin's bank", effective_at=at + timedelta(hours=8)))
    return requests


def history(conn: psycopg.Connection[Any]) -> None:
    anchor = demo_anchor(conn)
    rng = random.Random(2026)  # fixed seed: the same history on every load
    wallets = dict.fromkeys(CUSTOMERS, 0)
    merchants = dict.fromkeys(MERCHANTS, 0)
    for day in range(1, history_days):
        requests = _day(conn, anchor, day, rng, wallets, merchants)
        if requests:
            post(conn, requests)


def holds(conn: psycopg.Connection[Any]) -> None:
    """Card-style authorisations: one captured in part, one voided, one still open."""
    def hold(name: str, customer: str, merchant: str, amount: int) -> int:
        return post_one(conn, Hold(f"demo:holds:{name}", "payment.authorize", [
            Leg(chart.wallet(customer), Side.DEBIT, amount), Leg(chart.merchant_payable(merchant), Side.CREDIT, amount)],
            description=f"Authorisation at {MERCHANTS[merchant]}")).transaction_id

    captured = hold("partial", "U1001", "M2001", 29900)
    post_one(conn, PostHold("demo:holds:partial:capture", captured, amount=19900, kind="payment.capture",
                            description="Captured in part: one item was out of stock"))
    voided = hold("voided", "U1002", "M2002", 5000)
    post_one(conn, VoidHold("demo:holds:voided:void", voided, kind="payment.void", description="Order cancelled"))
    hold("open", "U1003", "M2002", 12800)


def reversal(conn: psycopg.Connection[Any]) -> None:
    """A top-up credited to the wrong wallet, reversed the same day."""
    at = demo_anchor(conn) + timedelta(days=history_days - 10, hours=3)
    mistaken = post_one(conn, Transfer("demo:reversal:topup", "wallet.top_up", [
        Leg(chart.bank_clearing("icbc"), Side.DEBIT, 8800), Leg(chart.wallet("U1002"), Side.CREDIT, 8800)],
        description="Top-up credited to the wrong wallet", effective_at=at)).transaction_id
    post_one(conn, Reverse("demo:reversal:reverse", mistaken, description="Credited to the wrong wallet",
                           effective_at=at + timedelta(hours=2)))
