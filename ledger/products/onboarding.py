"""Onboarding: the accounts each party needs, with their limits and holder ids.

A customer gets a wallet, a merchant a payable and a chargeback receivable (and terms: a fee rate
and whether refunds give the fee back pro rata), a supplier a payable. Every account carries the
party's id as holder_id, so a holder token sees exactly its own. Onboarding is idempotent: a
second call with the same input changes nothing; a merchant onboarded again with other terms gets
them recorded as a new row of `ledger.merchant_settings` (append-only; the latest applies to
payments authorized afterwards).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from ledger.accounts import Account, AccountType, NewAccount, create_account
from ledger.database_transaction import database_transaction
from ledger.errors import LedgerError, ValidationError
from ledger.products import chart
from ledger.products.rounding import parse_rate

__all__ = [
    "Onboarded",
    "MerchantTerms",
    "NotOnboarded",
    "onboard_customer",
    "onboard_merchant",
    "onboard_supplier",
    "merchant_terms",
    "chargeback_receivable",
    "parse_party_id",
    "fee_rate_max",
    "party_id_length_max",
]

party_id_length_max = 64
# Above this a "fee" is a typo, not a price: 0.2 is 20% of every payment.
fee_rate_max = Decimal("0.2")
# Ids become a segment of account codes, so they keep to the characters a code segment allows.
_PARTY_ID = re.compile(r"[A-Za-z0-9_.-]+")
# Advisory-lock namespace (first key of the two-key form) for onboarding a merchant's terms.
_TERMS_LOCK = 7260030


class NotOnboarded(LedgerError):
    """The customer, merchant or supplier has no accounts yet: onboard it first."""

    code = "NOT_ONBOARDED"


@dataclass(frozen=True)
class MerchantTerms:
    fee_rate: Decimal
    refund_fee_pro_rata: bool


@dataclass(frozen=True)
class Onboarded:
    party_id: str
    accounts: tuple[Account, ...]
    created: bool  # whether this call created anything (accounts or new terms)
    terms: MerchantTerms | None = None


def chargeback_receivable(merchant_id: str) -> str:
    """What a merchant owes back for chargebacks paid out of the reserve after its settlement."""
    return f"assets:chargeback_receivables:{merchant_id}"


def parse_party_id(value: object, *, field: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= party_id_length_max or not _PARTY_ID.fullmatch(value):
        raise ValidationError(
            f"{field} must be 1 to {party_id_length_max} letters, digits, '_', '-' or '.', got {value!r}",
            field=field)
    return value


def onboard_customer(conn: psycopg.Connection[Any], customer_id: str) -> Onboarded:
    """The customer's wallet: a liability that may never go below zero."""
    customer_id = parse_party_id(customer_id, field="customerId")
    with database_transaction(conn):
        wallet, created = _ensure(conn, chart.wallet(customer_id), f"Wallet of {customer_id}",
                                  AccountType.LIABILITY, customer_id)
    return Onboarded(customer_id, (wallet,), created)


def onboard_supplier(conn: psycopg.Connection[Any], supplier_id: str) -> Onboarded:
    """The supplier's payable (what the platform owes it), never below zero."""
    supplier_id = parse_party_id(supplier_id, field="supplierId")
    with database_transaction(conn):
        payable, created = _ensure(conn, chart.supplier_payable(supplier_id), f"Payable to {supplier_id}",
                                   AccountType.LIABILITY, supplier_id)
    return Onboarded(supplier_id, (payable,), created)


def onboard_merchant(
    conn: psycopg.Connection[Any], merchant_id: str, fee_rate: str | Decimal, *,
    refund_fee_pro_rata: bool = True,
) -> Onboarded:
    """The merchant's payable and chargeback receivable, and its terms."""
    merchant_id = parse_party_id(merchant_id, field="merchantId")
    terms = MerchantTerms(_fee_rate(fee_rate), _flag(refund_fee_pro_rata))
    with database_transaction(conn):
        payable, payable_created = _ensure(conn, chart.merchant_payable(merchant_id), f"Payable to {merchant_id}",
                                           AccountType.LIABILITY, merchant_id)
        receivable, receivable_created = _ensure(
            conn, chargeback_receivable(merchant_id), f"Chargebacks receivable from {merchant_id}",
            AccountType.ASSET, merchant_id)
        # Serialize concurrent onboardings of one merchant so its terms get one row, not two.
        conn.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (_TERMS_LOCK, merchant_id))
        terms_created = merchant_terms(conn, merchant_id) != terms
        if terms_created:
            conn.execute(
                """insert into ledger.merchant_settings (merchant_id, fee_rate, refund_fee_pro_rata)
                   values (%s, %s, %s)""", (merchant_id, terms.fee_rate, terms.refund_fee_pro_rata))
    return Onboarded(merchant_id, (payable, receivable), payable_created or receivable_created or terms_created,
                     terms)


def merchant_terms(conn: psycopg.Connection[Any], merchant_id: str) -> MerchantTerms | None:
    """The merchant's current terms, or None when it was never onboarded."""
    row = conn.execute(
        """select fee_rate, refund_fee_pro_rata from ledger.merchant_settings
            where merchant_id = %s order by id desc limit 1""", (merchant_id,)).fetchone()
    return None if row is None else MerchantTerms(Decimal(row[0]), bool(row[1]))


def _ensure(conn: psycopg.Connection[Any], code: str, name: str, account_type: AccountType,
            holder_id: str) -> tuple[Account, bool]:
    # Balances of a party's accounts never go below zero: a wallet cannot be overdrawn, the
    # platform never owes a negative amount, a receivable is never recovered twice.
    return create_account(conn, NewAccount(code, name, account_type, chart.currency, holder_id=holder_id,
                                           min_balance=0))


def _fee_rate(value: str | Decimal) -> Decimal:
    if isinstance(value, Decimal):
        rate = value
        if not rate.is_finite() or rate.is_signed():
            raise ValidationError(f"feeRate must be a decimal between 0 and {fee_rate_max}, got {value}",
                                  field="feeRate")
    else:
        try:
            rate = parse_rate(value, field="feeRate")
        except ValueError as exc:
            raise ValidationError(str(exc), field="feeRate") from None
    if rate > fee_rate_max:
        raise ValidationError(f"feeRate must be at most {fee_rate_max}, got {value}", field="feeRate")
    # Normalized so "0.0060" and "0.006" are the same terms (numeric keeps trailing zeros).
    return rate.normalize() if rate else Decimal(0)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"refundFeeProRata must be true or false, got {value!r}", field="refundFeeProRata")
    return value
