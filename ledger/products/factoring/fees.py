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



# ledger.factoring_fee_due's rule (target = round(rate x principal-days), half-up, minus what was
# already accrued; only positive amounts), with the days counted as business days.
_FEES_DUE_SQL = """
select a.id, (t.target - fb.posted_debits)::bigint
  from ledger.factoring_advances a
  join ledger.balances pb on pb.account_id = a.principal_account_id
  join ledger.balances fb on fb.account_id = a.fee_account_id
  cross join lateral (
      select round(a.daily_fee_rate * coalesce(sum(
                 case e.side when 'debit' then e.amount::numeric else -e.amount::numeric end
                 * (%(on)s::date - (e.effective_at at time zone %(zone)s)::date)), 0)) as target
        from ledger.entries e
       where e.account_id = a.principal_account_id and e.layer = 'posted'
         and e.effective_at < %(on_start)s) t
 where a.id = any(%(ids)s)
   and pb.posted_debits > pb.posted_credits
   and t.target > fb.posted_debits
 order by a.id
"""


def fees_due(conn: psycopg.Connection[Any], advance_ids: Sequence[int], on: date) -> list[tuple[int, int]]:
    """(advance id, fee still to accrue through business day `on`) of the open advances given."""
    params = {"ids": list(advance_ids), "on": on, "on_start": calendar.day_start(on),
              "zone": calendar.business_time_zone().key}
    return [(int(r[0]), int(r[1])) for r in conn.execute(_FEES_DUE_SQL, params).fetchall()]


def catch_up(conn: psycopg.Connection[Any], advance: Advance, on: date) -> tuple[Transfer | None, int]:
    """The accrual still missing through `on`, and the fee then due (outstanding + missing)."""
    due = fees_due(conn, [advance.id], on)
    if not due:
        return None, advance.fee_outstanding_fen
    return accrual_transfer(advance.id, on, due[0][1]), advance.fee_outstanding_fen + due[0][1]
