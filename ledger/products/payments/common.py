"""What every payments step shares: the platform accounts and limits, the errors, and the
steps' plumbing (one database transaction with retries, advisory locks, idempotent replays, the
record of which transaction was which step, and input parsing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from ledger.accounts import Account, AccountType, get_account
from ledger.database_transaction import database_transaction
from ledger.errors import (
    AccountNotFound,
    IdempotencyConflict,
    LedgerError,
    ValidationError,
)
from ledger.journal import entries_of_transactions
from ledger.posting import retries_max
from ledger.products import chart
from ledger.products.onboarding import NotOnboarded

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
# Advisory-lock namespace (first key of the two-key form); the second key hashes what is locked.
_LOCK_NAMESPACE = 7260031

T = TypeVar("T")


# Errors ------------------------------------------------------------------------------------------

class PaymentNotFound(LedgerError):
    code = "PAYMENT_NOT_FOUND"


class RefundExceedsCaptured(LedgerError):
    """A refund would return more than was captured minus what was refunded or charged back."""

    code = "REFUND_EXCEEDS_CAPTURED"


class CaptureExceedsAuthorized(LedgerError):
    code = "CAPTURE_EXCEEDS_AUTHORIZED"


class ChargebackNotAllowed(LedgerError):
    """A chargeback needs a captured payment whose merchant was settled since, and at most
    what is left of the capture after refunds and earlier chargebacks."""

    code = "CHARGEBACK_NOT_ALLOWED"


class BankNotFound(LedgerError):
    """No client-money reserve at this bank: it has taken no top-up yet."""

    code = "BANK_NOT_FOUND"


# Steps -------------------------------------------------------------------------------------------

def atomic(conn: psycopg.Connection[Any], work: Callable[[], T]) -> T:
    """Run `work` in one database transaction; on a connection with none open, retry it on
    serialization failures and deadlocks (a concurrent request with the same key, for one),
    where the retry answers from what the other request committed."""
    standalone = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    for attempt in range(retries_max + 1):
        try:
            with database_transaction(conn):
                return work()
        except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected):
            if not standalone or attempt == retries_max:
                raise
    raise AssertionError("unreachable")


def advisory_lock(conn: psycopg.Connection[Any], kind: str, name: str) -> None:
    conn.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, f"{kind}:{name}"))


def replayed_step(conn: psycopg.Connection[Any], key: str, step: str, *, payment_id: int | None = None,
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
        raise key_conflict(key)
    return int(row[0])


def parse_key(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= idempotency_key_length_max:
        raise ValidationError(f"idempotencyKey must be 1 to {idempotency_key_length_max} characters",
                              field="idempotencyKey")
    return value


def key_conflict(key: str) -> IdempotencyConflict:
    return IdempotencyConflict(f"idempotency key {key} was already used for a different request",
                               idempotency_key=key)


def record_step(conn: psycopg.Connection[Any], transaction_id: int, step: str, *, payment_id: int | None = None,
                 merchant_id: str | None = None, bank: str | None = None) -> None:
    conn.execute(
        """insert into ledger.payment_steps (transaction_id, step, payment_id, merchant_id, bank)
           values (%s, %s, %s, %s, %s) on conflict (transaction_id) do nothing""",
        (transaction_id, step, payment_id, merchant_id, bank))


def leg_amount(conn: psycopg.Connection[Any], transaction_id: int, account_id: int) -> int:
    return sum(e.amount for e in entries_of_transactions(conn, [transaction_id])[transaction_id]
               if e.account_id == account_id)


def signed_leg(conn: psycopg.Connection[Any], transaction_id: int, account_id: int) -> int:
    return sum(e.amount if e.side == "debit" else -e.amount
               for e in entries_of_transactions(conn, [transaction_id])[transaction_id] if e.account_id == account_id)


def credit_total(conn: psycopg.Connection[Any], transaction_id: int) -> int:
    return sum(e.amount for e in entries_of_transactions(conn, [transaction_id])[transaction_id]
               if e.side == "credit")


def ensure_platform_accounts(conn: psycopg.Connection[Any]) -> None:
    chart.ensure(conn, MERCHANT_FEE_INCOME, "Merchant fee income", AccountType.REVENUE)
    chart.ensure(conn, CHARGEBACK_LOSSES, "Chargeback losses", AccountType.EXPENSE)


def party_account(conn: psycopg.Connection[Any], code: str, party: str, party_id: str) -> Account:
    try:
        return get_account(conn, code)
    except AccountNotFound:
        raise NotOnboarded(f"{party} {party_id} is not onboarded (no account {code})",
                           **{f"{party}_id": party_id}) from None


def parse_bank(value: object) -> str:
    if (not isinstance(value, str) or not 1 <= len(value) <= bank_id_length_max
            or not all(c.isascii() and (c.isalnum() or c in "_-") for c in value)):
        raise ValidationError(f"bank must be 1 to {bank_id_length_max} letters, digits, '_' or '-', got {value!r}",
                              field="bank")
    return value


def bank_accounts(conn: psycopg.Connection[Any], bank: str) -> tuple[Account, Account]:
    try:
        return get_account(conn, chart.bank_clearing(bank)), get_account(conn, chart.bank_reserve(bank))
    except AccountNotFound:
        raise BankNotFound(f"no client-money reserve at bank {bank}: it has taken no top-up", bank=bank) from None


def parse_payment_id(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
        raise ValidationError(f"paymentId must be a payment id, got {value!r}", field="paymentId")
    return value
