"""Chargebacks after a merchant was settled, owed back by the merchant, and their write-off."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from ledger.accounts import Side
from ledger.balances import balances_now
from ledger.errors import InsufficientFunds
from ledger.money import parse_amount
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products.onboarding import chargeback_receivable, parse_party_id
from ledger.products.payments.common import (
    CHARGEBACK_LOSSES,
    ChargebackNotAllowed,
    advisory_lock,
    atomic,
    credit_total,
    ensure_platform_accounts,
    key_conflict,
    leg_amount,
    parse_key,
    parse_payment_id,
    party_account,
    record_step,
    replayed_step,
)
from ledger.products.payments.records import PaymentStep, get_payment, lock_payment


@dataclass(frozen=True)
class ChargebackWriteOff:
    transaction_id: int
    replayed: bool
    merchant_id: str
    amount_fen: int


def chargeback(conn: psycopg.Connection[Any], *, idempotency_key: str, payment_id: int | str,
               amount_fen: int | str) -> PaymentStep:
    """The customer's bank took money back after the merchant was paid out: the reserve pays it
    (Dr chargeback receivable:merchant / Cr reserve of the bank that settled the merchant), and
    the merchant owes it back, recovered from its next settlement or written off.

    Before the merchant's settlement the money is still in its payable: refund instead.
    """
    idempotency_key = parse_key(idempotency_key)
    payment_id, amount = parse_payment_id(payment_id), parse_amount(amount_fen)

    def work() -> PaymentStep:
        payment = lock_payment(conn, payment_id)
        replayed_id = replayed_step(conn, idempotency_key, "chargeback", payment_id=payment.id)
        if replayed_id is not None:
            if credit_total(conn, replayed_id) != amount:
                raise key_conflict(idempotency_key)
            return PaymentStep(payment, replayed_id, True)
        advisory_lock(conn, "merchant", payment.merchant_id)
        if payment.capture_id is None:
            raise ChargebackNotAllowed(f"payment {payment.id} was not captured", payment_id=payment.id)
        bank = _settled_since(conn, payment.merchant_id, payment.capture_id)
        if bank is None:
            raise ChargebackNotAllowed(
                f"merchant {payment.merchant_id} was not settled since payment {payment.id} was captured; "
                "refund the payment instead", payment_id=payment.id)
        if amount > payment.refundable_fen:
            raise ChargebackNotAllowed(
                f"payment {payment.id}: cannot charge back {amount}, at most {payment.refundable_fen} "
                "(captured minus refunded and charged back)",
                payment_id=payment.id, refundable=payment.refundable_fen, requested=amount)
        posted = post(conn, [Transfer(
            idempotency_key, "payment.chargeback",
            [Leg(chargeback_receivable(payment.merchant_id), Side.DEBIT, amount),
             Leg(chart.bank_reserve(bank), Side.CREDIT, amount)],
            description=f"Chargeback of {amount} on payment {payment.id}",
            metadata={"payment_id": payment.id, "bank": bank})])[0]
        record_step(conn, posted.transaction_id, "chargeback", payment_id=payment.id,
                     merchant_id=payment.merchant_id, bank=bank)
        return PaymentStep(get_payment(conn, payment.id), posted.transaction_id, False)

    return atomic(conn, work)


def write_off_chargeback(conn: psycopg.Connection[Any], *, idempotency_key: str, merchant_id: str,
                         amount_fen: int | str | None = None) -> ChargebackWriteOff:
    """Give up on (part of) what a merchant owes for chargebacks: Dr chargeback loss / Cr
    receivable; by default all of it."""
    idempotency_key = parse_key(idempotency_key)
    merchant_id = parse_party_id(merchant_id, field="merchantId")
    amount = None if amount_fen is None else parse_amount(amount_fen)

    def work() -> ChargebackWriteOff:
        advisory_lock(conn, "merchant", merchant_id)
        receivable = party_account(conn, chargeback_receivable(merchant_id), "merchant", merchant_id)
        replayed_id = replayed_step(conn, idempotency_key, "write_off_chargeback", merchant_id=merchant_id)
        if replayed_id is not None:
            written_off = leg_amount(conn, replayed_id, receivable.id)
            if amount is not None and amount != written_off:
                raise key_conflict(idempotency_key)
            return ChargebackWriteOff(replayed_id, True, merchant_id, written_off)
        owed = int(balances_now(conn, [receivable.id])[receivable.id].posted)
        written_off = owed if amount is None else amount
        if owed == 0 or written_off > owed:
            raise InsufficientFunds(
                f"merchant {merchant_id} owes {owed} for chargebacks; cannot write off {written_off}",
                account=receivable.code, available=owed, requested=written_off)
        ensure_platform_accounts(conn)
        posted = post(conn, [Transfer(
            idempotency_key, "payment.write_off_chargeback",
            [Leg(CHARGEBACK_LOSSES, Side.DEBIT, written_off), Leg(receivable.code, Side.CREDIT, written_off)],
            description=f"Chargebacks of {merchant_id} written off", metadata={"merchant_id": merchant_id})])[0]
        record_step(conn, posted.transaction_id, "write_off_chargeback", merchant_id=merchant_id)
        return ChargebackWriteOff(posted.transaction_id, False, merchant_id, written_off)

    return atomic(conn, work)


def _settled_since(conn: psycopg.Connection[Any], merchant_id: str, transaction_id: int) -> str | None:
    """The bank of the merchant's latest settlement posted after the given transaction."""
    row = conn.execute(
        """select bank from ledger.payment_steps
            where merchant_id = %s and step = 'settle_merchant' and transaction_id > %s
            order by transaction_id desc limit 1""", (merchant_id, transaction_id)).fetchone()
    return None if row is None else str(row[0])
