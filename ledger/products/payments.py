"""Payments: wallets topped up through banks, card-style authorize / capture / refund for
merchants, settlement, chargebacks and the client-money rule (shared/domain/README.md).

Every step is one idempotent ledger transaction, or one all-or-nothing batch, keyed from the
caller's idempotency key (a capture's fee is `f"{key}:fee"`). What a payment authorized,
captured, refunded or charged as fee is never stored as a number: it is read from the journal,
from the hold, the transaction that resolved it (`resolves_hold_id`) and the transactions the
product linked to the payment in `ledger.payment_steps` (sql/0030_payments.sql).

Steps whose amount depends on the ledger's state (a fee refund, a settlement, a sweep) run in one
database transaction that first takes a lock (the payment row FOR UPDATE, or an advisory lock
per merchant or bank), then answers a replayed key from the journal, then reads, decides and
posts. Lock order: payment row, then merchant, then bank; so no two steps wait in a cycle.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import psycopg
from psycopg import errors as pg_errors

from ledger.accounts import Account, AccountType, Side, get_account
from ledger.balances import balances_now, rollup
from ledger.cursors import decode_cursor, encode_cursor
from ledger.errors import (
    AccountNotFound,
    HoldExpired,
    HoldNotPending,
    IdempotencyConflict,
    InsufficientFunds,
    LedgerError,
    ValidationError,
)
from ledger.journal import entries_of_transactions
from ledger.money import parse_amount
from ledger.posting import Hold, Leg, PostHold, Request, Transfer, VoidHold, post, retries_max
from ledger.products import chart
from ledger.products.onboarding import NotOnboarded, chargeback_receivable, merchant_terms, parse_party_id
from ledger.products.rounding import decimal_prec, round_half_up

__all__ = [
    "MERCHANT_FEE_INCOME",
    "CHARGEBACK_LOSSES",
    "RESERVES",
    "CLIENT_MONEY_LIABILITIES",
    "PaymentNotFound",
    "RefundExceedsCaptured",
    "CaptureExceedsAuthorized",
    "ChargebackNotAllowed",
    "BankNotFound",
    "PaymentStatus",
    "Payment",
    "PaymentStep",
    "PaymentPage",
    "TopUp",
    "TopUpSettlement",
    "MerchantSettlement",
    "ChargebackWriteOff",
    "ClientMoney",
    "Sweep",
    "ensure_bank",
    "top_up",
    "settle_top_ups",
    "authorize_payment",
    "capture_payment",
    "void_payment",
    "refund_payment",
    "chargeback",
    "settle_merchant",
    "write_off_chargeback",
    "get_payment",
    "get_payments",
    "list_payments",
    "client_money",
    "sweep_client_money",
    "business_timezone",
    "page_size_max",
    "idempotency_key_length_max",
]

MERCHANT_FEE_INCOME = "revenue:merchant_fees"
CHARGEBACK_LOSSES = "expenses:chargeback_losses"
RESERVES = "assets:reserves"
# The client liabilities the reserves must cover (the client-money rule of the domain page):
# wallets, merchant and supplier payables, and fund subscriptions owed to the fund manager.
CLIENT_MONEY_LIABILITIES = (
    "liabilities:wallets",
    "liabilities:merchants",
    "liabilities:suppliers",
    "liabilities:fund_subscriptions_owed",
)

page_size_max = 500
bank_id_length_max = 40
# Below the core's 200, leaving room for the sub-keys derived from it (f"{key}:fee").
idempotency_key_length_max = 190
# A CNY platform's day ends at midnight in Beijing (UTC+8, no daylight saving).
business_timezone = ZoneInfo("Asia/Shanghai")
# Advisory-lock namespace (first key of the two-key form); the second key hashes what is locked.
_LOCK_NAMESPACE = 7260031

T = TypeVar("T")


# Errors ------------------------------------------------------------------------------------------

class PaymentNotFound(LedgerError):
    code = "PAYMENT_NOT_FOUND"
    sqlstate = "LD031"


class RefundExceedsCaptured(LedgerError):
    """A refund would return more than was captured minus what was refunded or charged back."""

    code = "REFUND_EXCEEDS_CAPTURED"
    sqlstate = "LD032"


class CaptureExceedsAuthorized(LedgerError):
    code = "CAPTURE_EXCEEDS_AUTHORIZED"
    sqlstate = "LD033"


class ChargebackNotAllowed(LedgerError):
    """A chargeback needs a captured payment whose merchant was settled since, and at most
    what is left of the capture after refunds and earlier chargebacks."""

    code = "CHARGEBACK_NOT_ALLOWED"
    sqlstate = "LD034"


class BankNotFound(LedgerError):
    """No client-money reserve at this bank: it has taken no top-up yet."""

    code = "BANK_NOT_FOUND"
    sqlstate = "LD035"


# Values ------------------------------------------------------------------------------------------

class PaymentStatus(enum.Enum):
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    VOIDED = "VOIDED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class Payment:
    id: int
    customer_id: str
    merchant_id: str
    status: PaymentStatus
    currency: str
    authorized_fen: int
    captured_fen: int
    refunded_fen: int
    fee_fen: int
    fee_refunded_fen: int
    charged_back_fen: int
    fee_rate: Decimal
    refund_fee_pro_rata: bool
    hold_id: int
    capture_id: int | None  # the transaction that posted the hold
    expires_at: datetime | None
    created_at: datetime

    @property
    def refundable_fen(self) -> int:
        return self.captured_fen - self.refunded_fen - self.charged_back_fen


@dataclass(frozen=True)
class PaymentStep:
    """The payment after a step, and the step's transaction (the first one of a batch)."""

    payment: Payment
    transaction_id: int
    replayed: bool


@dataclass(frozen=True)
class PaymentPage:
    payments: tuple[Payment, ...]
    end_cursor: str | None
    has_next_page: bool


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


@dataclass(frozen=True)
class MerchantSettlement:
    transaction_id: int | None  # None when the merchant had nothing available
    replayed: bool
    merchant_id: str
    bank: str
    paid_out_fen: int
    chargebacks_recovered_fen: int


@dataclass(frozen=True)
class ChargebackWriteOff:
    transaction_id: int
    replayed: bool
    merchant_id: str
    amount_fen: int


@dataclass(frozen=True)
class ClientMoney:
    as_of: datetime | None
    currency: str
    reserves_fen: int
    wallets_fen: int
    merchants_fen: int
    suppliers_fen: int
    fund_subscriptions_fen: int

    @property
    def liabilities_fen(self) -> int:
        return self.wallets_fen + self.merchants_fen + self.suppliers_fen + self.fund_subscriptions_fen

    @property
    def difference_fen(self) -> int:
        """Reserves minus client liabilities: positive is own money in the reserves, negative
        a shortfall; the end-of-day sweep brings it to zero."""
        return self.reserves_fen - self.liabilities_fen


@dataclass(frozen=True)
class Sweep:
    transaction_id: int | None  # None when the rule already held
    replayed: bool
    bank: str
    date: date
    amount_fen: int  # positive: own funds into the reserve; negative: out of it
    effective_at: datetime  # of the sweep's transaction (or when it found nothing to move)


# Top-ups -----------------------------------------------------------------------------------------

def ensure_bank(conn: psycopg.Connection[Any], bank: str) -> tuple[Account, Account]:
    """The bank's clearing and client-money reserve accounts, created on its first top-up.

    Both are real money at the bank, so this creates them never below zero; accounts an admin
    (or the demo) made before are used as they are.
    """
    bank = _bank(bank)
    found = []
    for code, name in ((chart.bank_clearing(bank), f"Top-ups confirmed by {bank}, not settled"),
                       (chart.bank_reserve(bank), f"Client-money reserve at {bank}")):
        try:
            found.append(get_account(conn, code))
        except AccountNotFound:
            found.append(chart.ensure(conn, code, name, AccountType.ASSET, min_balance=0))
    return found[0], found[1]


def top_up(conn: psycopg.Connection[Any], *, idempotency_key: str, customer_id: str, bank: str,
           amount_fen: int | str) -> TopUp:
    """The bank confirmed the customer's payment: Dr clearing:bank / Cr wallet."""
    idempotency_key = _key(idempotency_key)
    customer_id, bank = parse_party_id(customer_id, field="customerId"), _bank(bank)
    amount_fen = parse_amount(amount_fen)
    wallet = _party_account(conn, chart.wallet(customer_id), "customer", customer_id)

    def work() -> TopUp:
        clearing, _ = ensure_bank(conn, bank)
        posted = post(conn, [Transfer(
            idempotency_key, "payment.top_up",
            [Leg(clearing.code, Side.DEBIT, amount_fen), Leg(wallet.code, Side.CREDIT, amount_fen)],
            description=f"Top-up of {customer_id} via {bank}",
            metadata={"customer_id": customer_id, "bank": bank})])[0]
        _record_step(conn, posted.transaction_id, "top_up", bank=bank)
        return TopUp(posted.transaction_id, posted.replayed, customer_id, bank, amount_fen)

    return _atomic(conn, work)


def settle_top_ups(conn: psycopg.Connection[Any], *, bank: str, idempotency_key: str | None = None
                   ) -> TopUpSettlement:
    """The bank settled: move everything in its clearing account into its reserve.

    Without a key, the key is derived from the clearing account's version, so a retry that finds
    nothing changed replays instead of settling twice.
    """
    bank = _bank(bank)
    if idempotency_key is not None:
        idempotency_key = _key(idempotency_key)

    def work() -> TopUpSettlement:
        _lock(conn, "bank", bank)
        clearing, reserve = _bank_accounts(conn, bank)
        now = balances_now(conn, [clearing.id])[clearing.id]
        key = idempotency_key if idempotency_key is not None else f"payment.settle_top_ups:{bank}:v{now.version}"
        replayed_id = _replayed_step(conn, key, "settle_top_ups", bank=bank)
        if replayed_id is not None:
            amount = _leg_amount(conn, replayed_id, reserve.id)
            return TopUpSettlement(replayed_id, True, bank, amount)
        amount = int(now.posted)
        if amount == 0:
            return TopUpSettlement(None, False, bank, 0)
        posted = post(conn, [Transfer(
            key, "payment.settle_top_ups",
            [Leg(reserve.code, Side.DEBIT, amount), Leg(clearing.code, Side.CREDIT, amount)],
            description=f"{bank} settled confirmed top-ups", metadata={"bank": bank})])[0]
        _record_step(conn, posted.transaction_id, "settle_top_ups", bank=bank)
        return TopUpSettlement(posted.transaction_id, posted.replayed, bank, amount)

    return _atomic(conn, work)


# Authorize, capture, void -------------------------------------------------------------------------

def authorize_payment(
    conn: psycopg.Connection[Any], *, idempotency_key: str, customer_id: str, merchant_id: str,
    amount_fen: int | str, expires_at: datetime | None = None,
) -> PaymentStep:
    """A hold on the customer's wallet in favour of the merchant (pending layer).

    The payment's terms (the merchant's fee rate and refund setting) are fixed now.
    """
    customer_id = parse_party_id(customer_id, field="customerId")
    merchant_id = parse_party_id(merchant_id, field="merchantId")
    idempotency_key = _key(idempotency_key)
    amount_fen = parse_amount(amount_fen)
    wallet = _party_account(conn, chart.wallet(customer_id), "customer", customer_id)
    payable = _party_account(conn, chart.merchant_payable(merchant_id), "merchant", merchant_id)
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
            _record_step(conn, posted.transaction_id, "authorize", payment_id=row[0], merchant_id=merchant_id)
        return PaymentStep(get_payment(conn, row[0]), posted.transaction_id, posted.replayed)

    return _atomic(conn, work)


def capture_payment(conn: psycopg.Connection[Any], *, idempotency_key: str, payment_id: int | str,
                    amount_fen: int | str | None = None) -> PaymentStep:
    """Post all or part of the hold (the rest is released) and charge the merchant's fee.

    The core's PostHold carries no extra legs, so the capture and the fee (Dr merchant / Cr
    fee income, rounded half-up) are two transactions of one batch: all or nothing.
    """
    idempotency_key = _key(idempotency_key)
    payment_id = _payment_id(payment_id)
    amount = None if amount_fen is None else parse_amount(amount_fen)

    def work() -> PaymentStep:
        payment = _lock_payment(conn, payment_id)
        replayed_id = _replayed_step(conn, idempotency_key, "capture", payment_id=payment.id)
        if replayed_id is not None:
            if amount is not None and amount != payment.captured_fen:
                raise _conflict(idempotency_key)
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
            _ensure_platform(conn)
            requests.append(Transfer(
                f"{idempotency_key}:fee", "payment.fee",
                [Leg(chart.merchant_payable(payment.merchant_id), Side.DEBIT, fee),
                 Leg(MERCHANT_FEE_INCOME, Side.CREDIT, fee)],
                description=f"Fee {payment.fee_rate} on payment {payment.id}", metadata=metadata))
        results = post(conn, requests)
        for result, step in zip(results, ("capture", "fee")):
            _record_step(conn, result.transaction_id, step, payment_id=payment.id, merchant_id=payment.merchant_id)
        return PaymentStep(get_payment(conn, payment.id), results[0].transaction_id, False)

    return _atomic(conn, work)


def void_payment(conn: psycopg.Connection[Any], *, idempotency_key: str, payment_id: int | str) -> PaymentStep:
    """Release the hold; an expired authorization can still be voided (to tidy it up)."""
    idempotency_key = _key(idempotency_key)
    payment_id = _payment_id(payment_id)

    def work() -> PaymentStep:
        payment = _lock_payment(conn, payment_id)
        replayed_id = _replayed_step(conn, idempotency_key, "void", payment_id=payment.id)
        if replayed_id is not None:
            return PaymentStep(payment, replayed_id, True)
        if payment.status not in (PaymentStatus.AUTHORIZED, PaymentStatus.EXPIRED):
            raise HoldNotPending(_not_pending_message(payment, "voided"), payment_id=payment.id,
                                 status=payment.status.value)
        posted = post(conn, [VoidHold(idempotency_key, payment.hold_id, kind="payment.void",
                                      description=f"Void of payment {payment.id}",
                                      metadata={"payment_id": payment.id})])[0]
        _record_step(conn, posted.transaction_id, "void", payment_id=payment.id, merchant_id=payment.merchant_id)
        return PaymentStep(get_payment(conn, payment.id), posted.transaction_id, False)

    return _atomic(conn, work)


# Refunds and chargebacks ---------------------------------------------------------------------------

def refund_payment(conn: psycopg.Connection[Any], *, idempotency_key: str, payment_id: int | str,
                   amount_fen: int | str) -> PaymentStep:
    """Dr merchant / Cr wallet, never more than captured minus refunded and charged back; with
    the merchant's pro-rata setting also Dr fee income / Cr merchant, in the same transaction.

    The fee given back is cumulative (round(fee x refunded so far / captured) minus what earlier
    refunds gave back), so refunding everything returns exactly the fee charged.
    """
    idempotency_key = _key(idempotency_key)
    payment_id, amount = _payment_id(payment_id), parse_amount(amount_fen)

    def work() -> PaymentStep:
        # The row lock makes concurrent refunds of one payment take turns, each reading what the
        # previous one posted: exactly the refundable amount can win.
        payment = _lock_payment(conn, payment_id)
        replayed_id = _replayed_step(conn, idempotency_key, "refund", payment_id=payment.id)
        if replayed_id is not None:
            if _credit_total(conn, replayed_id) != amount:
                raise _conflict(idempotency_key)
            return PaymentStep(payment, replayed_id, True)
        _lock(conn, "merchant", payment.merchant_id)
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
        _record_step(conn, posted.transaction_id, "refund", payment_id=payment.id, merchant_id=payment.merchant_id)
        return PaymentStep(get_payment(conn, payment.id), posted.transaction_id, False)

    return _atomic(conn, work)


def chargeback(conn: psycopg.Connection[Any], *, idempotency_key: str, payment_id: int | str,
               amount_fen: int | str) -> PaymentStep:
    """The customer's bank took money back after the merchant was paid out: the reserve pays it
    (Dr chargeback receivable:merchant / Cr reserve of the bank that settled the merchant), and
    the merchant owes it back, recovered from its next settlement or written off.

    Before the merchant's settlement the money is still in its payable: refund instead.
    """
    idempotency_key = _key(idempotency_key)
    payment_id, amount = _payment_id(payment_id), parse_amount(amount_fen)

    def work() -> PaymentStep:
        payment = _lock_payment(conn, payment_id)
        replayed_id = _replayed_step(conn, idempotency_key, "chargeback", payment_id=payment.id)
        if replayed_id is not None:
            if _credit_total(conn, replayed_id) != amount:
                raise _conflict(idempotency_key)
            return PaymentStep(payment, replayed_id, True)
        _lock(conn, "merchant", payment.merchant_id)
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
        _record_step(conn, posted.transaction_id, "chargeback", payment_id=payment.id,
                     merchant_id=payment.merchant_id, bank=bank)
        return PaymentStep(get_payment(conn, payment.id), posted.transaction_id, False)

    return _atomic(conn, work)


# Merchant settlement and chargeback write-off -------------------------------------------------------

def settle_merchant(conn: psycopg.Connection[Any], *, idempotency_key: str, merchant_id: str, bank: str
                    ) -> MerchantSettlement:
    """Pay out the merchant's whole available balance from the bank's reserve, netting what it
    owes for chargebacks first: Dr merchant / Cr chargeback receivable / Cr reserve."""
    idempotency_key = _key(idempotency_key)
    merchant_id, bank = parse_party_id(merchant_id, field="merchantId"), _bank(bank)

    def work() -> MerchantSettlement:
        _lock(conn, "merchant", merchant_id)
        payable = _party_account(conn, chart.merchant_payable(merchant_id), "merchant", merchant_id)
        receivable = get_account(conn, chargeback_receivable(merchant_id))
        _, reserve = _bank_accounts(conn, bank)
        replayed_id = _replayed_step(conn, idempotency_key, "settle_merchant", merchant_id=merchant_id, bank=bank)
        if replayed_id is not None:
            return MerchantSettlement(replayed_id, True, merchant_id, bank, _leg_amount(conn, replayed_id, reserve.id),
                                      _leg_amount(conn, replayed_id, receivable.id))
        now = balances_now(conn, [payable.id, receivable.id])
        # int(): the core's available balance arrives as a Decimal (a sum over bigint).
        available, owed = int(now[payable.id].available), int(now[receivable.id].posted)
        if available <= 0:
            return MerchantSettlement(None, False, merchant_id, bank, 0, 0)
        recovered = min(available, owed)
        legs = [Leg(payable.code, Side.DEBIT, available)]
        if recovered:
            legs.append(Leg(receivable.code, Side.CREDIT, recovered))
        if available > recovered:
            legs.append(Leg(reserve.code, Side.CREDIT, available - recovered))
        posted = post(conn, [Transfer(idempotency_key, "payment.settle_merchant", legs,
                                      description=f"Settlement of {merchant_id} via {bank}",
                                      metadata={"merchant_id": merchant_id, "bank": bank})])[0]
        _record_step(conn, posted.transaction_id, "settle_merchant", merchant_id=merchant_id, bank=bank)
        return MerchantSettlement(posted.transaction_id, False, merchant_id, bank, available - recovered, recovered)

    return _atomic(conn, work)


def write_off_chargeback(conn: psycopg.Connection[Any], *, idempotency_key: str, merchant_id: str,
                         amount_fen: int | str | None = None) -> ChargebackWriteOff:
    """Give up on (part of) what a merchant owes for chargebacks: Dr chargeback loss / Cr
    receivable; by default all of it."""
    idempotency_key = _key(idempotency_key)
    merchant_id = parse_party_id(merchant_id, field="merchantId")
    amount = None if amount_fen is None else parse_amount(amount_fen)

    def work() -> ChargebackWriteOff:
        _lock(conn, "merchant", merchant_id)
        receivable = _party_account(conn, chargeback_receivable(merchant_id), "merchant", merchant_id)
        replayed_id = _replayed_step(conn, idempotency_key, "write_off_chargeback", merchant_id=merchant_id)
        if replayed_id is not None:
            written_off = _leg_amount(conn, replayed_id, receivable.id)
            if amount is not None and amount != written_off:
                raise _conflict(idempotency_key)
            return ChargebackWriteOff(replayed_id, True, merchant_id, written_off)
        owed = int(balances_now(conn, [receivable.id])[receivable.id].posted)
        written_off = owed if amount is None else amount
        if owed == 0 or written_off > owed:
            raise InsufficientFunds(
                f"merchant {merchant_id} owes {owed} for chargebacks; cannot write off {written_off}",
                account=receivable.code, available=owed, requested=written_off)
        _ensure_platform(conn)
        posted = post(conn, [Transfer(
            idempotency_key, "payment.write_off_chargeback",
            [Leg(CHARGEBACK_LOSSES, Side.DEBIT, written_off), Leg(receivable.code, Side.CREDIT, written_off)],
            description=f"Chargebacks of {merchant_id} written off", metadata={"merchant_id": merchant_id})])[0]
        _record_step(conn, posted.transaction_id, "write_off_chargeback", merchant_id=merchant_id)
        return ChargebackWriteOff(posted.transaction_id, False, merchant_id, written_off)

    return _atomic(conn, work)


# Client money --------------------------------------------------------------------------------------

def client_money(conn: psycopg.Connection[Any], *, as_of: datetime | None = None) -> ClientMoney:
    """The reserves against the client liabilities they must cover, as of an effective time."""
    if as_of is not None and as_of.tzinfo is None:
        raise ValidationError("asOf must carry a UTC offset", field="asOf")

    def total(prefix: str) -> int:
        return sum(m.amount_minor for m in rollup(conn, prefix, as_of=as_of) if m.currency == chart.currency)

    wallets, merchants, suppliers, subscriptions = (total(p) for p in CLIENT_MONEY_LIABILITIES)
    return ClientMoney(as_of, chart.currency, total(RESERVES), wallets, merchants, suppliers, subscriptions)


def sweep_client_money(conn: psycopg.Connection[Any], *, idempotency_key: str, bank: str, day: date
                       ) -> Sweep:
    """End-of-day sweep: move the client-money difference between own funds and the bank's
    reserve, so reserves equal client liabilities at the end of `day` (Beijing time), or now
    when the day is today. Dr own funds / Cr reserve for an excess, the opposite for a shortfall.
    """
    idempotency_key = _key(idempotency_key)
    bank = _bank(bank)
    if not isinstance(day, date) or isinstance(day, datetime):
        raise ValidationError(f"date must be a calendar date, got {day!r}", field="date")

    def work() -> Sweep:
        # One sweep at a time: two at once would both move the same difference.
        _lock(conn, "sweep", "client_money")
        _, reserve = _bank_accounts(conn, bank)
        replayed_id = _replayed_step(conn, idempotency_key, "sweep", bank=bank)
        if replayed_id is not None:
            return Sweep(replayed_id, True, bank, day, _signed_leg(conn, replayed_id, reserve.id),
                         _effective_at(conn, replayed_id))
        effective_at, backdated = _sweep_time(conn, day)
        difference = client_money(conn, as_of=effective_at if backdated else None).difference_fen
        if difference == 0:
            return Sweep(None, False, bank, day, 0, effective_at)
        chart.ensure_platform_accounts(conn)
        into_reserve = -difference
        legs = [Leg(reserve.code, Side.DEBIT, into_reserve), Leg(chart.OWN_FUNDS, Side.CREDIT, into_reserve)] \
            if into_reserve > 0 else \
            [Leg(chart.OWN_FUNDS, Side.DEBIT, difference), Leg(reserve.code, Side.CREDIT, difference)]
        posted = post(conn, [Transfer(
            idempotency_key, "payment.sweep", legs, description=f"Client-money sweep for {day} via {bank}",
            effective_at=effective_at if backdated else None, metadata={"bank": bank, "date": day.isoformat()})])[0]
        _record_step(conn, posted.transaction_id, "sweep", bank=bank)
        return Sweep(posted.transaction_id, False, bank, day, into_reserve, _effective_at(conn, posted.transaction_id))

    return _atomic(conn, work)


def _effective_at(conn: psycopg.Connection[Any], transaction_id: int) -> datetime:
    row = conn.execute("select effective_at from ledger.transactions where id = %s", (transaction_id,)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _sweep_time(conn: psycopg.Connection[Any], day: date) -> tuple[datetime, bool]:
    """The last instant of `day` in Beijing, and whether that is in the past (a backdated sweep)."""
    row = conn.execute("select clock_timestamp()").fetchone()
    assert row is not None
    now: datetime = row[0]
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=business_timezone) \
        - timedelta(microseconds=1)
    if day > now.astimezone(business_timezone).date():
        raise ValidationError(f"cannot sweep {day} before it has begun", field="date")
    return (end, True) if end < now else (now, False)


# Reading payments ----------------------------------------------------------------------------------

_PAYMENTS_SQL = """
select p.id, p.customer_id, p.merchant_id, p.hold_id, p.fee_rate, p.refund_fee_pro_rata, p.created_at,
       h.expires_at, h.expires_at is not null and h.expires_at <= clock_timestamp() as expired,
       held.amount, held.currency, r.id as resolved_by, r.hold_action,
       coalesce(cap.amount, 0), coalesce(st.fee, 0), coalesce(st.refunded, 0),
       coalesce(st.fee_refunded, 0), coalesce(st.charged_back, 0)
  from ledger.payments p
  join ledger.transactions h on h.id = p.hold_id
  cross join lateral (
      select sum(e.amount) as amount, min(e.currency) as currency
        from ledger.entries e where e.transaction_id = p.hold_id and e.side = 'debit') held
  left join ledger.transactions r on r.resolves_hold_id = p.hold_id
  left join lateral (
      select sum(e.amount) as amount from ledger.entries e
       where e.transaction_id = r.id and r.hold_action = 'post' and e.layer = 'posted' and e.side = 'debit') cap
    on true
  left join lateral (
      -- Each step's legs are built by this module: the fee's one credit is the fee, a refund's
      -- one credit is the wallet's, its debit on fee income the fee given back, a chargeback's
      -- one debit the receivable.
      select sum(e.amount) filter (where s.step = 'fee' and e.side = 'credit') as fee,
             sum(e.amount) filter (where s.step = 'refund' and e.side = 'credit') as refunded,
             sum(e.amount) filter (where s.step = 'refund' and e.side = 'debit'
                                     and e.account_id = fee_income.id) as fee_refunded,
             sum(e.amount) filter (where s.step = 'chargeback' and e.side = 'debit') as charged_back
        from ledger.payment_steps s
        join ledger.entries e on e.transaction_id = s.transaction_id
        left join ledger.accounts fee_income on fee_income.code = %(fee_income)s
       where s.payment_id = p.id and s.step in ('fee', 'refund', 'chargeback')) st on true
"""


def get_payments(conn: psycopg.Connection[Any], ids: Sequence[int]) -> dict[int, Payment]:
    """Payments by id, each derived from the journal, in one query (for pages and loaders)."""
    rows = conn.execute(_PAYMENTS_SQL + " where p.id = any(%(ids)s)",
                        {"ids": list(ids), "fee_income": MERCHANT_FEE_INCOME}).fetchall()
    return {row[0]: _payment_of(row) for row in rows}


def get_payment(conn: psycopg.Connection[Any], payment_id: int | str) -> Payment:
    payment_id = _payment_id(payment_id)
    found = get_payments(conn, [payment_id]).get(payment_id)
    if found is None:
        raise PaymentNotFound(f"no payment {payment_id}", payment_id=payment_id)
    return found


def list_payments(
    conn: psycopg.Connection[Any], *, customer_id: str | None = None, merchant_id: str | None = None,
    party_id: str | None = None, first: int = 100, after: str | None = None,
) -> PaymentPage:
    """Payments newest first, optionally of one customer and/or merchant, and/or where `party_id`
    is either side (what a holder may see); keyset on the id."""
    if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= page_size_max:
        raise ValidationError(f"first must be between 0 and {page_size_max}, got {first!r}", field="first")
    before_id = decode_cursor(after, fields={"id": int})["id"] if after is not None else None
    rows = conn.execute(
        _PAYMENTS_SQL + """
         where (%(customer)s::text is null or p.customer_id = %(customer)s)
           and (%(merchant)s::text is null or p.merchant_id = %(merchant)s)
           and (%(party)s::text is null or %(party)s in (p.customer_id, p.merchant_id))
           and (%(before)s::bigint is null or p.id < %(before)s)
         order by p.id desc limit %(limit)s""",
        {"customer": customer_id, "merchant": merchant_id, "party": party_id, "before": before_id, "limit": first + 1,
         "fee_income": MERCHANT_FEE_INCOME}).fetchall()
    payments = tuple(_payment_of(row) for row in rows[:first])
    end_cursor = encode_cursor({"id": payments[-1].id}) if payments else None
    return PaymentPage(payments, end_cursor, len(rows) > first)


def _payment_of(row: Sequence[Any]) -> Payment:
    (pid, customer, merchant, hold_id, fee_rate, pro_rata, created_at, expires_at, expired, authorized,
     currency, resolved_by, action, captured, fee, refunded, fee_refunded, charged_back) = row
    if action == "void":
        status = PaymentStatus.VOIDED
    elif action == "post":
        status = (PaymentStatus.CAPTURED if refunded == 0 else
                  PaymentStatus.REFUNDED if refunded >= captured else PaymentStatus.PARTIALLY_REFUNDED)
    else:
        status = PaymentStatus.EXPIRED if expired else PaymentStatus.AUTHORIZED
    return Payment(pid, customer, merchant, status, currency, int(authorized), int(captured), int(refunded),
                   int(fee), int(fee_refunded), int(charged_back), Decimal(fee_rate), bool(pro_rata), hold_id,
                   resolved_by if action == "post" else None, expires_at, created_at)


# Helpers -------------------------------------------------------------------------------------------

def _atomic(conn: psycopg.Connection[Any], work: Callable[[], T]) -> T:
    """Run `work` in one database transaction; on a connection with none open, retry it on
    serialization failures and deadlocks (a concurrent request with the same key, for one),
    where the retry answers from what the other request committed."""
    standalone = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    for attempt in range(retries_max + 1):
        try:
            with conn.transaction():
                return work()
        except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected):
            if not standalone or attempt == retries_max:
                raise
    raise AssertionError("unreachable")


def _lock(conn: psycopg.Connection[Any], kind: str, name: str) -> None:
    conn.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, f"{kind}:{name}"))


def _lock_payment(conn: psycopg.Connection[Any], payment_id: int) -> Payment:
    row = conn.execute("select id from ledger.payments where id = %s for update", (payment_id,)).fetchone()
    if row is None:
        raise PaymentNotFound(f"no payment {payment_id}", payment_id=payment_id)
    return get_payment(conn, payment_id)


def _replayed_step(conn: psycopg.Connection[Any], key: str, step: str, *, payment_id: int | None = None,
                   merchant_id: str | None = None, bank: str | None = None) -> int | None:
    """The transaction an earlier request with this key posted, if it was this very step; a key
    used for anything else is an IdempotencyConflict."""
    row = conn.execute(
        """select t.id, s.step, s.payment_id, s.merchant_id, s.bank
             from ledger.transactions t left join ledger.payment_steps s on s.transaction_id = t.id
            where t.idempotency_key = %s""", (key,)).fetchone()
    if row is None:
        return None
    _, found_step, found_payment, found_merchant, found_bank = row
    if (found_step != step or (payment_id is not None and found_payment != payment_id)
            or (merchant_id is not None and found_merchant != merchant_id)
            or (bank is not None and found_bank != bank)):
        raise _conflict(key)
    return int(row[0])


def _key(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= idempotency_key_length_max:
        raise ValidationError(f"idempotencyKey must be 1 to {idempotency_key_length_max} characters",
                              field="idempotencyKey")
    return value


def _conflict(key: str) -> IdempotencyConflict:
    return IdempotencyConflict(f"idempotency key {key} was already used for a different request",
                               idempotency_key=key)


def _record_step(conn: psycopg.Connection[Any], transaction_id: int, step: str, *, payment_id: int | None = None,
                 merchant_id: str | None = None, bank: str | None = None) -> None:
    conn.execute(
        """insert into ledger.payment_steps (transaction_id, step, payment_id, merchant_id, bank)
           values (%s, %s, %s, %s, %s) on conflict (transaction_id) do nothing""",
        (transaction_id, step, payment_id, merchant_id, bank))


def _settled_since(conn: psycopg.Connection[Any], merchant_id: str, transaction_id: int) -> str | None:
    """The bank of the merchant's latest settlement posted after the given transaction."""
    row = conn.execute(
        """select bank from ledger.payment_steps
            where merchant_id = %s and step = 'settle_merchant' and transaction_id > %s
            order by transaction_id desc limit 1""", (merchant_id, transaction_id)).fetchone()
    return None if row is None else str(row[0])


def _leg_amount(conn: psycopg.Connection[Any], transaction_id: int, account_id: int) -> int:
    return sum(e.amount for e in entries_of_transactions(conn, [transaction_id])[transaction_id]
               if e.account_id == account_id)


def _signed_leg(conn: psycopg.Connection[Any], transaction_id: int, account_id: int) -> int:
    return sum(e.amount if e.side == "debit" else -e.amount
               for e in entries_of_transactions(conn, [transaction_id])[transaction_id] if e.account_id == account_id)


def _credit_total(conn: psycopg.Connection[Any], transaction_id: int) -> int:
    return sum(e.amount for e in entries_of_transactions(conn, [transaction_id])[transaction_id]
               if e.side == "credit")


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


def _ensure_platform(conn: psycopg.Connection[Any]) -> None:
    chart.ensure(conn, MERCHANT_FEE_INCOME, "Merchant fee income", AccountType.REVENUE)
    chart.ensure(conn, CHARGEBACK_LOSSES, "Chargeback losses", AccountType.EXPENSE)


def _party_account(conn: psycopg.Connection[Any], code: str, party: str, party_id: str) -> Account:
    try:
        return get_account(conn, code)
    except AccountNotFound:
        raise NotOnboarded(f"{party} {party_id} is not onboarded (no account {code})",
                           **{f"{party}_id": party_id}) from None


def _bank(value: object) -> str:
    if (not isinstance(value, str) or not 1 <= len(value) <= bank_id_length_max
            or not all(c.isascii() and (c.isalnum() or c in "_-") for c in value)):
        raise ValidationError(f"bank must be 1 to {bank_id_length_max} letters, digits, '_' or '-', got {value!r}",
                              field="bank")
    return value


def _bank_accounts(conn: psycopg.Connection[Any], bank: str) -> tuple[Account, Account]:
    try:
        return get_account(conn, chart.bank_clearing(bank)), get_account(conn, chart.bank_reserve(bank))
    except AccountNotFound:
        raise BankNotFound(f"no client-money reserve at bank {bank}: it has taken no top-up", bank=bank) from None


def _payment_id(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
        raise ValidationError(f"paymentId must be a payment id, got {value!r}", field="paymentId")
    return value
