"""The daily factoring fee job: every open advance's fee through a date, in one set-based pass.

Per batch of advances (in id order), one database transaction: lock the advance rows, so no
payment, repayment or default changes them meanwhile; ask the database what each still has to
accrue to reach its cumulative target (`ledger.factoring_fee_due`: round(P r d) minus what its
fee receivable was already debited); post that through the core. Accrued amounts are read back
from the journal, so a second run for a date finds nothing due and posts nothing, and a run that
stopped half-way is finished by running it again.

Each transaction carries up to 99 advances' fees (one debit per fee receivable, one credit to
fee income): the core's cost is mostly per transaction, and 100,000 one-advance transactions
would take minutes here. Its idempotency key names the date, the advances' id range and a digest
of what it accrues, so the same accrual is a replay and a different one can never be mistaken
for it. A payment's catch-up accrues a single advance with the key `factoring.fee:<id>:<date>`.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO

import psycopg

from ledger import calendar
from ledger.accounts import Side
from ledger.database_transaction import database_transaction
from ledger.errors import ValidationError
from ledger.posting import Leg, Transfer, legs_per_transaction_max, post
from ledger.products.factoring.common import FEE_INCOME, ensure_product_accounts, fee_code, parse_day
from ledger.products.factoring.fees import accrual_transfer, fees_due
from ledger.progress import Progress

__all__ = ["AccrualRun", "accrue_factoring_fees", "batch_size_max", "advances_per_transaction",
           "transactions_per_post"]

# Advances one database transaction locks, computes and commits together.
batch_size_max = 10_000
# Fee legs of one accrual transaction; the last leg credits fee income.
advances_per_transaction = legs_per_transaction_max - 1
# Transactions per post() call. The core notifies the accounts a call touched in one pg_notify,
# whose payload is capped at 8000 bytes: 7 x 100 accounts stay under it at ids of up to 10 digits.
transactions_per_post = 7

# The batch is picked by a subquery and locked by the outer statement, which reads the advances
# alone: Citus (docs/scale-out.md) locks rows only in a statement that reads no distributed table.
_OPEN_BATCH_SQL = """
select a.id from ledger.factoring_advances a
 where a.id in (select o.id from ledger.factoring_advances o
                  join ledger.balances pb on pb.account_id = o.principal_account_id
                 where o.id > %(after)s and o.advanced_on < %(on)s and pb.posted_debits > pb.posted_credits
                 order by o.id limit %(limit)s)
 order by a.id
   for update
"""

_OPEN_COUNT_SQL = """
select count(*) from ledger.factoring_advances a
  join ledger.balances pb on pb.account_id = a.principal_account_id
 where a.advanced_on < %s and pb.posted_debits > pb.posted_credits
"""


@dataclass(frozen=True)
class AccrualRun:
    on: date
    advances_accrued: int
    fee_fen: int
    batches: int


def accrue_factoring_fees(
    conn: psycopg.Connection[Any], on: date, *, batch_size: int = batch_size_max,
    progress: TextIO | None = sys.stderr,
) -> AccrualRun:
    """Accrue every open advance's fee through business day `on` (not after today)."""
    on = parse_day(on, "date")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= batch_size_max:
        raise ValidationError(f"batch size must be 1 to {batch_size_max}", field="batchSize")
    ensure_product_accounts(conn)
    total = conn.execute(_OPEN_COUNT_SQL, (on,)).fetchone()
    meter = Progress(progress, int(total[0]) if total else 0, f"accruing factoring fees through {on}")
    after, accrued, fee_fen, batches = 0, 0, 0, 0
    while True:
        with database_transaction(conn):
            # Lock first, compute after: under READ COMMITTED the second statement sees what a
            # payment committed while this one waited for its advance.
            ids = [int(r[0]) for r in conn.execute(
                _OPEN_BATCH_SQL, {"after": after, "on": on, "limit": batch_size}).fetchall()]
            due = fees_due(conn, ids, on) if ids else []
            _post_accruals(conn, on, due)
        batches += 1 if due else 0
        accrued += len(due)
        fee_fen += sum(fee for _, fee in due)
        meter.advance(len(ids))
        if len(ids) < batch_size:
            break
        after = ids[-1]
    meter.finish()
    return AccrualRun(on, accrued, fee_fen, batches)


def _post_accruals(conn: psycopg.Connection[Any], on: date, due: Sequence[tuple[int, int]]) -> None:
    requests = [_transaction(on, due[start:start + advances_per_transaction])
                for start in range(0, len(due), advances_per_transaction)]
    for start in range(0, len(requests), transactions_per_post):
        post(conn, requests[start:start + transactions_per_post])


def _transaction(on: date, due: Sequence[tuple[int, int]]) -> Transfer:
    if len(due) == 1:
        return accrual_transfer(due[0][0], on, due[0][1])
    digest = hashlib.sha256(",".join(f"{a}:{fee}" for a, fee in due).encode()).hexdigest()[:16]
    total = sum(fee for _, fee in due)
    return Transfer(
        f"factoring.fees:{on.isoformat()}:{due[0][0]}-{due[-1][0]}:{digest}", "factoring.fee_accrual",
        [*(Leg(fee_code(a), Side.DEBIT, fee) for a, fee in due), Leg(FEE_INCOME, Side.CREDIT, total)],
        description=f"Factoring fees of {len(due)} advances through {on}", effective_at=calendar.day_start(on),
        metadata={"accrued_through": on.isoformat(), "advances": len(due)})
