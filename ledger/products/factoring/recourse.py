"""Default: an overdue advance's unpaid principal and fee become the supplier's recourse
receivable (recovered from its later invoice payments, see `repayment`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ledger.accounts import AccountType, Side
from ledger.database_transaction import database_transaction
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products.effective import business_day_of, parse_effective_at, request_instant
from ledger.products.factoring.common import (
    AdvanceNotOverdue,
    advance_code,
    fee_code,
    nonzero_legs,
    parse_advance_id,
    parse_key,
    record_step,
    recourse_code,
    replay_of,
)
from ledger.products.factoring.fees import catch_up, check_step_day
from ledger.products.factoring.records import Advance, get_advance, require_open


@dataclass(frozen=True)
class Default:
    advance: Advance
    principal_to_recourse_fen: int
    fee_to_recourse_fen: int
    transaction_id: int
    replayed: bool


def default_advance(conn: psycopg.Connection[Any], advance_id: int, *, idempotency_key: str,
                    effective_at: datetime | None = None) -> Default:
    """Past due and not repaid by the buyer's payments (the invoice diluted or unpaid): what is
    still owed, principal and fee to date, becomes the supplier's recourse receivable.

    effective_at (default now) dates it as a repayment's (see repayment.settle_invoice); its
    business day must come after the invoice's due date.
    """
    advance_id = parse_advance_id(advance_id)
    key = parse_key("default", idempotency_key)
    effective_at = parse_effective_at(effective_at)
    request: dict[str, Any] = {"advance_id": advance_id}
    if effective_at is not None:  # absent from requests made before a default could be dated
        request["effective_at"] = request_instant(effective_at)
    with database_transaction(conn):
        advance = get_advance(conn, advance_id, lock=True)
        done = replay_of(conn, key, request)
        if done is not None:
            return Default(advance, done["principal_to_recourse_fen"], done["fee_to_recourse_fen"],
                           done["transaction_id"], True)
        require_open(advance)
        day = business_day_of(effective_at)
        if day <= advance.due_date:
            raise AdvanceNotOverdue(f"advance {advance_id}: invoice {advance.invoice_no} falls due on "
                                    f"{advance.due_date}; it can be defaulted after that", due_date=str(advance.due_date))
        check_step_day(conn, advance, day)
        accrual, fee_due = catch_up(conn, advance, day)
        principal_fen = advance.principal_outstanding_fen
        supplier = advance.supplier_id
        chart.ensure(conn, recourse_code(supplier), f"Factoring recourse receivable from {supplier}",
                     AccountType.ASSET, holder_id=supplier, min_balance=0)
        default = Transfer(key, "factoring.default", nonzero_legs([
            Leg(recourse_code(supplier), Side.DEBIT, principal_fen + fee_due),
            Leg(advance_code(advance_id), Side.CREDIT, principal_fen), Leg(fee_code(advance_id), Side.CREDIT, fee_due)]),
            description=f"Advance {advance_id} defaulted: unpaid principal and fee recoverable from {supplier}",
            effective_at=effective_at,
            metadata={"request": request, "advance_id": advance_id, "principal_to_recourse_fen": principal_fen,
                      "fee_to_recourse_fen": fee_due})
        posted = post(conn, ([accrual] if accrual else []) + [default])[-1]
        record_step(conn, posted, "default", advance.invoice_id, advance_id)
        return Default(get_advance(conn, advance_id), principal_fen, fee_due, posted.transaction_id, False)
