"""The daily fee of an advance (the daily job over every advance is
ledger/products/factoring_accrual.py; a payment, repayment or default first catches up on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import psycopg

from ledger import calendar
from ledger.accounts import Side
from ledger.posting import Leg, Transfer
from ledger.products.factoring.common import FEE_INCOME, fee_code
from ledger.products.factoring.records import Advance


def accrual_transfer(advance_id: int, on: date, fee_fen: int) -> Transfer:
    """The one request that accrues an advance's fee through `on`: the daily job and the catch-up
    of a payment build it alike, so whichever posts second is a replay."""
    return Transfer(
        f"factoring.fee:{advance_id}:{on.isoformat()}", "factoring.fee_accrual",
        [Leg(fee_code(advance_id), Side.DEBIT, fee_fen), Leg(FEE_INCOME, Side.CREDIT, fee_fen)],
        description=f"Factoring fee of advance {advance_id} through {on}",
        effective_at=calendar.day_start(on), metadata={"advance_id": advance_id, "accrued_through": on.isoformat()})


def fees_due(conn: psycopg.Connection[Any], advance_ids: Sequence[int], on: date) -> list[tuple[int, int]]:
    """(advance id, fee still to accrue through business day `on`) of the open advances given."""
    rows = conn.execute("select advance_id, fee_fen from ledger.factoring_fee_due(%s, %s, %s)",
                        (list(advance_ids), on, calendar.business_time_zone().key)).fetchall()
    return [(int(r[0]), int(r[1])) for r in rows]


def catch_up(conn: psycopg.Connection[Any], advance: Advance, on: date) -> tuple[Transfer | None, int]:
    """The accrual still missing through `on`, and the fee then due (outstanding + missing)."""
    due = fees_due(conn, [advance.id], on)
    if not due:
        return None, advance.fee_outstanding_fen
    return accrual_transfer(advance.id, on, due[0][1]), advance.fee_outstanding_fen + due[0][1]
