"""Factoring advances to suppliers against the platform's own purchase invoices.

The buyer is the platform's retail business: recording a purchase invoice posts its payable to
the supplier (Dr retail inventory / Cr supplier payable:S). An advance against that receivable
is paid from own funds into a per-advance principal account; a daily fee accrues into a
per-advance fee receivable. When the retail business pays the invoice, the payment goes to the
fee first, then the principal, and the rest to the supplier; after a default the unpaid part
moves to the supplier's recourse receivable, recovered from its later invoice payments.

Every step is one database transaction: lock the invoice or advance row, read the state from the
journal (the balances of the advance's own accounts and the metadata of this product's
transactions), decide, post through `ledger.posting.post`, record which transaction was which
step. Nothing that changes is stored beside the journal. Dates are business days (ledger/calendar.py);
a backdated step is effective at the start of its day. See docs/rules.md, "Factoring".

The package by lifecycle: `invoices` (recording one), `advances` (advancing on one), `fees` (the
daily fee), `repayment` (the buyer's payment of the invoice, the supplier's early repayment),
`recourse` (default), `records` (invoices and advances read back) and `common` (accounts,
settings, errors, input and the steps' plumbing).
"""

from __future__ import annotations

from ledger.products.factoring.advances import AdvanceMade, advance_on_invoice
from ledger.products.factoring.common import (
    FEE_INCOME,
    RETAIL_INVENTORY,
    AdvanceNotFound,
    AdvanceNotOpen,
    AdvanceNotOverdue,
    AmountExceedsOutstanding,
    FeeAccruedPastDay,
    InvoiceAlreadyAssigned,
    InvoiceAlreadyPaid,
    InvoiceAlreadyRecorded,
    InvoiceNotFound,
    advance_code,
    advance_rate_max,
    advance_rounding,
    daily_fee_rate_max,
    fee_code,
    fee_rounding,
    idempotency_key_length_max,
    invoice_no_length_max,
    page_size_max,
    recourse_code,
)
from ledger.products.factoring.invoices import InvoiceRecorded, record_purchase_invoice
from ledger.products.factoring.records import (
    Advance,
    AdvanceStatus,
    Invoice,
    get_advance,
    get_advances,
    get_invoice,
    list_advances,
)
from ledger.products.factoring.recourse import Default, default_advance
from ledger.products.factoring.repayment import (
    InvoicePayment,
    Repayment,
    repay_advance,
    settle_invoice,
)

__all__ = [
    "InvoiceNotFound",
    "InvoiceAlreadyRecorded",
    "InvoiceAlreadyAssigned",
    "InvoiceAlreadyPaid",
    "AdvanceNotFound",
    "AdvanceNotOpen",
    "AdvanceNotOverdue",
    "AmountExceedsOutstanding",
    "FeeAccruedPastDay",
    "Invoice",
    "Advance",
    "AdvanceStatus",
    "InvoiceRecorded",
    "AdvanceMade",
    "InvoicePayment",
    "Repayment",
    "Default",
    "record_purchase_invoice",
    "advance_on_invoice",
    "settle_invoice",
    "repay_advance",
    "default_advance",
    "get_invoice",
    "get_advance",
    "get_advances",
    "list_advances",
    "advance_code",
    "fee_code",
    "recourse_code",
    "FEE_INCOME",
    "RETAIL_INVENTORY",
    "advance_rounding",
    "fee_rounding",
    "advance_rate_max",
    "daily_fee_rate_max",
    "page_size_max",
    "invoice_no_length_max",
    "idempotency_key_length_max",
]
