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
from ledger.errors import ValidationError
from ledger.posting import Leg, Transfer
from ledger.products.factoring.common import FEE_INCOME, FeeAccruedPastDay, fee_code
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


def accrued_through(conn: psycopg.Connection[Any], advance_id: int) -> date | None:
    """The last business day the advance's fee is accrued through (its latest accrual), if any."""
    row = conn.execute(
        """select max(e.effective_at) from ledger.accounts a
             join ledger.entries e on e.account_id = a.id and e.side = 'debit' and e.layer = 'posted'
            where a.code = %s""", (fee_code(advance_id),)).fetchone()
    return None if row is None or row[0] is None else calendar.business_date(row[0])


def check_step_day(conn: psycopg.Connection[Any], advance: Advance, day: date) -> None:
    """A step moving the advance's principal on `day` comes no earlier than the advance and the
    fee already accrued: fee is accrued through a day on the principal in place when it starts."""
    if day < advance.advanced_on:
        raise ValidationError(f"effectiveAt lies on {day}, before advance {advance.id} was made on "
                              f"{advance.advanced_on}", field="effectiveAt")
    through = accrued_through(conn, advance.id)
    if through is not None and day < through:
        raise FeeAccruedPastDay(
            f"advance {advance.id}'s fee is accrued through {through}; a step dated {day} would leave fee charged "
            f"on principal it repaid", advance_id=advance.id, day=day.isoformat(), accrued_through=through.isoformat())
