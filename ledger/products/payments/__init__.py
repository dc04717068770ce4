"""Payments: wallets topped up through banks, card-style authorize / capture / refund for
merchants, settlement, chargebacks and the client-money rule (docs/rules.md, "Payments").

Every step is one idempotent ledger transaction, or one all-or-nothing batch, keyed from the
caller's idempotency key (a capture's fee is `f"{key}:fee"`). What a payment authorized,
captured, refunded or charged as fee is never stored as a number: it is read from the journal,
from the hold, the transaction that resolved it (`resolves_hold_id`) and the transactions the
product linked to the payment in `ledger.payment_steps` (sql/0030_payments.sql).

Steps whose amount depends on the ledger's state (a fee refund, a settlement, a sweep) run in one
database transaction that first takes a lock (the payment row FOR UPDATE, or an advisory lock
per merchant or bank), then answers a replayed key from the journal, then reads, decides and
posts. Lock order: payment row, then merchant, then bank; so no two steps wait in a cycle.

The package by lifecycle: `wallets` (top-ups and their settlement), `acquiring` (authorize,
capture, void, refund), `merchants` (settlement), `chargebacks` (and their write-off),
`client_money_rule` (the rule and the end-of-day sweep), `records` (payments read from the
journal) and `common` (accounts, limits, errors and the steps' plumbing).
"""

from __future__ import annotations

from ledger.products.payments.acquiring import (
    authorize_payment,
    capture_payment,
    refund_payment,
    void_payment,
)
from ledger.products.payments.chargebacks import ChargebackWriteOff, chargeback, write_off_chargeback
from ledger.products.payments.client_money_rule import (
    ClientMoney,
    Sweep,
    client_money,
    sweep_client_money,
)
from ledger.products.payments.common import (
    CHARGEBACK_LOSSES,
    CLIENT_MONEY_LIABILITIES,
    MERCHANT_FEE_INCOME,
    RESERVES,
    BankNotFound,
    CaptureExceedsAuthorized,
    ChargebackNotAllowed,
    PaymentNotFound,
    RefundExceedsCaptured,
    idempotency_key_length_max,
    page_size_max,
)
from ledger.products.payments.merchants import MerchantSettlement, settle_merchant
from ledger.products.payments.records import (
    Payment,
    PaymentPage,
    PaymentStatus,
    PaymentStep,
    get_payment,
    get_payments,
    list_payments,
)
from ledger.products.payments.wallets import (
    TopUp,
    TopUpSettlement,
    ensure_bank,
    settle_top_ups,
    top_up,
)

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
    "page_size_max",
    "idempotency_key_length_max",
]
