"""Merchant settlement: the merchant's available balance paid out from a bank's reserve,
what it owes for chargebacks netted first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from ledger.accounts import Side, get_account
from ledger.balances import balances_now
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products.onboarding import chargeback_receivable, parse_party_id
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
class MerchantSettlement:
    transaction_id: int | None  # None when the merchant had nothing available
    replayed: bool
    merchant_id: str
    bank: str
    paid_out_fen: int
    chargebacks_recovered_fen: int


def settle_merchant(conn: psycopg.Connection[Any], *, idempotency_key: str, merchant_id: str, bank: str
                    ) -> MerchantSettlement:
    """Pay out the merchant's whole available balance from the bank's reserve, netting what it
    owes for chargebacks first: Dr merchant / Cr chargeback receivable / Cr reserve."""
    idempotency_key = parse_key(idempotency_key)
    merchant_id, bank = parse_party_id(merchant_id, field="merchantId"), parse_bank(bank)

    def work() -> MerchantSettlement:
        advisory_lock(conn, "merchant", merchant_id)
        payable = party_account(conn, chart.merchant_payable(merchant_id), "merchant", merchant_id)
        receivable = get_account(conn, chargeback_receivable(merchant_id))
        _, reserve = bank_accounts(conn, bank)
        replayed_id = replayed_step(conn, idempotency_key, "settle_merchant", merchant_id=merchant_id, bank=bank)
        if replayed_id is not None:
            return MerchantSettlement(replayed_id, True, merchant_id, bank, leg_amount(conn, replayed_id, reserve.id),
                                      leg_amount(conn, replayed_id, receivable.id))
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
        record_step(conn, posted.transaction_id, "settle_merchant", merchant_id=merchant_id, bank=bank)
        return MerchantSettlement(posted.transaction_id, False, merchant_id, bank, available - recovered, recovered)

    return atomic(conn, work)
