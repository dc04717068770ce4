"""Card-style acquiring for merchants: authorize (a hold on the wallet), capture with the
merchant's fee, void, and refund (with the fee given back pro rata when the merchant's terms say
so).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

import psycopg

from ledger.accounts import Side
from ledger.errors import HoldExpired, HoldNotPending, IdempotencyConflict
from ledger.money import parse_amount
from ledger.posting import Hold, Leg, PostHold, Request, Transfer, VoidHold, post
from ledger.products import chart
from ledger.products.onboarding import NotOnboarded, merchant_terms, parse_party_id
from ledger.products.payments.common import (
    MERCHANT_FEE_INCOME,
    CaptureExceedsAuthorized,
    RefundExceedsCaptured,
    advisory_lock,
    atomic,
    credit_total,
    ensure_platform_accounts,
    key_conflict,
    parse_key,
    parse_payment_id,
    party_account,
    record_step,
    replayed_step,
)
from ledger.products.payments.records import Payment, PaymentStatus, PaymentStep, get_payment, lock_payment
from ledger.products.rounding import decimal_prec, round_half_up


def authorize_payment(
    conn: psycopg.Connection[Any], *, idempotency_key: str, customer_id: str, merchant_id: str,
    amount_fen: int | str, expires_at: datetime | None = None,
) -> PaymentStep:
    """A hold on the customer's wallet in favour of the merchant (pending layer).

    The payment's terms (the merchant's fee rate and refund setting) are fixed now.
    """
    customer_id = parse_party_id(customer_id, field="customerId")
    merchant_id = parse_party_id(merchant_id, field="merchantId")
    idempotency_key = parse_key(idempotency_key)
    amount_fen = parse_amount(amount_fen)
    wallet = party_account(conn, chart.wallet(customer_id), "customer", customer_id)
    payable = party_account(conn, chart.merchant_payable(merchant_id), "merchant", merchant_id)
    terms = merchant_terms(conn, merchant_id)
    if terms is None:
        raise NotOnboarded(f"merchant {merchant_id} has no terms; onboard it first", merchant_id=merchant_id)

    def work() -> PaymentStep:
        posted = post(conn, [Hold(
            idempotency_key, "payment.authorize",
            [Leg(wallet.code, Side.DEBIT, amount_fen), Leg(payable.code, Side.CREDIT, amount_fen)],
            description=f"Payment by {customer_id} to {merchant_id}", expires_at=expires_at,
            metadata={"customer_id": customer_id, "merchant_id": merchant_id})])[0]
        row = conn.execute("select id from ledger.payments where hold_id = %s", (posted.transaction_id,)).fetchone()
        if row is None:
            if posted.replayed:
                raise IdempotencyConflict(
                    f"idempotency key {idempotency_key} was used for a hold that is not a payment",
                    idempotency_key=idempotency_key)
            row = conn.execute(
                """insert into ledger.payments (customer_id, merchant_id, hold_id, fee_rate, refund_fee_pro_rata)
                   values (%s, %s, %s, %s, %s) returning id""",
                (customer_id, merchant_id, posted.transaction_id, terms.fee_rate, terms.refund_fee_pro_rata),
            ).fetchone()
            assert row is not None
            record_step(conn, posted.transaction_id, "authorize", payment_id=row[0], merchant_id=merchant_id)
        return PaymentStep(get_payment(conn, row[0]), posted.transaction_id, posted.replayed)

    return atomic(conn, work)


def capture_payment(conn: psycopg.Connection[Any], *, idempotency_key: str, payment_id: int | str,
                    amount_fen: int | str | None = None) -> PaymentStep:
    """Post all or part of the hold (the rest is released) and charge the merchant's fee.

    The core's PostHold carries no extra legs, so the capture and the fee (Dr merchant / Cr
    fee income, rounded half-up) are two transactions of one batch: all or nothing.
    """
    idempotency_key = parse_key(idempotency_key)
    payment_id = parse_payment_id(payment_id)
    amount = None if amount_fen is None else parse_amount(amount_fen)

    def work() -> PaymentStep:
        payment = lock_payment(conn, payment_id)
        replayed_id = replayed_step(conn, idempotency_key, "capture", payment_id=payment.id)
        if replayed_id is not None:
            if amount is not None and amount != payment.captured_fen:
                raise key_conflict(idempotency_key)
            return PaymentStep(payment, replayed_id, True)
        _require_pending(payment, "captured")
        captured = payment.authorized_fen if amount is None else amount
        if captured > payment.authorized_fen:
            raise CaptureExceedsAuthorized(
                f"payment {payment.id}: cannot capture {captured}, only {payment.authorized_fen} was authorized",
                payment_id=payment.id, authorized=payment.authorized_fen, requested=captured)
        fee = _fee(captured, payment.fee_rate)
        metadata = {"payment_id": payment.id}
        requests: list[Request] = [PostHold(idempotency_key, payment.hold_id, captured, kind="payment.capture",
                                            description=f"Capture of payment {payment.id}", metadata=metadata)]
        if fee > 0:
            ensure_platform_accounts(conn)
            requests.append(Transfer(
                f"{idempotency_key}:fee", "payment.fee",
                [Leg(chart.merchant_payable(payment.merchant_id), Side.DEBIT, fee),
                 Leg(MERCHANT_FEE_INCOME, Side.CREDIT, fee)],
                description=f"Fee {payment.fee_rate} on payment {payment.id}", metadata=metadata))
        results = post(conn, requests)
        # A capture without a fee posted one request: its results end before the step names do.
        for result, step in zip(results, ("capture", "fee"), strict=False):
            record_step(conn, result.transaction_id, step, payment_id=payment.id, merchant_id=payment.merchant_id)
        return PaymentStep(get_payment(conn, payment.id), results[0].transaction_id, False)

    return atomic(conn, work)


def void_payment(conn: psycopg.Connection[Any], *, idempotency_key: str, payment_id: int | str) -> PaymentStep:
    """Release the hold; an expired authorization can still be voided (to tidy it up)."""
    idempotency_key = parse_key(idempotency_key)
    payment_id = parse_payment_id(payment_id)

    def work() -> PaymentStep:
        payment = lock_payment(conn, payment_id)
        replayed_id = replayed_step(conn, idempotency_key, "void", payment_id=payment.id)
        if replayed_id is not None:
            return PaymentStep(payment, replayed_id, True)
        if payment.status not in (PaymentStatus.AUTHORIZED, PaymentStatus.EXPIRED):
            raise HoldNotPending(_not_pending_message(payment, "voided"), payment_id=payment.id,
                                 status=payment.status.value)
        posted = post(conn, [VoidHold(idempotency_key, payment.hold_id, kind="payment.void",
                                      description=f"Void of payment {payment.id}",
                                      metadata={"payment_id": payment.id})])[0]
        record_step(conn, posted.transaction_id, "void", payment_id=payment.id, merchant_id=payment.merchant_id)
        return PaymentStep(get_payment(conn, payment.id), posted.transaction_id, False)

    return atomic(conn, work)


def refund_payment(conn: psycopg.Connection[Any], *, idempotency_key: str, payment_id: int | str,
                   amount_fen: int | str) -> PaymentStep:
    """Dr merchant / Cr wallet, never more than captured minus refunded and charged back; with
    the merchant's pro-rata setting also Dr fee income / Cr merchant, in the same transaction.

    The fee given back is cumulative (round(fee x refunded so far / captured) minus what earlier
    refunds gave back), so refunding everything returns exactly the fee charged.
    """
    idempotency_key = parse_key(idempotency_key)
    payment_id, amount = parse_payment_id(payment_id), parse_amount(amount_fen)

    def work() -> PaymentStep:
        # The row lock makes concurrent refunds of one payment take turns, each reading what the
        # previous one posted: exactly the refundable amount can win.
        payment = lock_payment(conn, payment_id)
        replayed_id = replayed_step(conn, idempotency_key, "refund", payment_id=payment.id)
        if replayed_id is not None:
            if credit_total(conn, replayed_id) != amount:
                raise key_conflict(idempotency_key)
            return PaymentStep(payment, replayed_id, True)
        advisory_lock(conn, "merchant", payment.merchant_id)
        if amount > payment.refundable_fen:
            raise RefundExceedsCaptured(
                f"payment {payment.id}: cannot refund {amount}; captured {payment.captured_fen}, refunded "
                f"{payment.refunded_fen}, charged back {payment.charged_back_fen}, so at most "
                f"{payment.refundable_fen} is refundable",
                payment_id=payment.id, refundable=payment.refundable_fen, requested=amount)
        fee_back = 0
        if payment.refund_fee_pro_rata and payment.fee_fen > 0:
            fee_back = _div_half_up(payment.fee_fen * (payment.refunded_fen + amount), payment.captured_fen) \
                - payment.fee_refunded_fen
        assert 0 <= fee_back <= amount, "a fee refund never exceeds the refund"
        legs = [Leg(chart.wallet(payment.customer_id), Side.CREDIT, amount)]
        if amount > fee_back:
            legs.append(Leg(chart.merchant_payable(payment.merchant_id), Side.DEBIT, amount - fee_back))
        if fee_back:
            legs.append(Leg(MERCHANT_FEE_INCOME, Side.DEBIT, fee_back))
        posted = post(conn, [Transfer(idempotency_key, "payment.refund", legs,
                                      description=f"Refund of {amount} on payment {payment.id}",
                                      metadata={"payment_id": payment.id, "fee_refunded_fen": fee_back})])[0]
        record_step(conn, posted.transaction_id, "refund", payment_id=payment.id, merchant_id=payment.merchant_id)
        return PaymentStep(get_payment(conn, payment.id), posted.transaction_id, False)

    return atomic(conn, work)


def _require_pending(payment: Payment, action: str) -> None:
    if payment.status is PaymentStatus.EXPIRED:
        raise HoldExpired(f"payment {payment.id}: the authorization expired at {payment.expires_at}; "
                          "it can only be voided", payment_id=payment.id, hold_id=payment.hold_id)
    if payment.status is not PaymentStatus.AUTHORIZED:
        raise HoldNotPending(_not_pending_message(payment, action), payment_id=payment.id,
                             status=payment.status.value)


def _not_pending_message(payment: Payment, action: str) -> str:
    was = "voided" if payment.status is PaymentStatus.VOIDED else "captured"
    return f"payment {payment.id} was already {was} ({payment.status.value}); it cannot be {action}"


def _fee(amount_fen: int, fee_rate: Decimal) -> int:
    with localcontext(prec=decimal_prec):
        return round_half_up(Decimal(amount_fen) * fee_rate)


def _div_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up, exactly, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)
