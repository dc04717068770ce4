"""Read models of loans: schedule with what is paid per instalment, outstanding, days past due.

Everything is derived as of a moment from the journal (`ledger.credit_loan_state`): paid amounts
are allocated over the schedule per component, oldest instalment first, the order repayments
pay them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from ledger import calendar
from ledger.errors import ValidationError
from ledger.products.credit import Bucket, Loan, LoanNotFound, get_loans, load_settings
from ledger.products.credit_repay import Allocation

__all__ = ["InstalmentView", "LoanView", "loan_views", "loan_view", "list_loans", "page_size_max"]

page_size_max = 500


@dataclass(frozen=True)
class InstalmentView:
    number: int
    due_date: date
    principal_fen: int
    fee_fen: int
    interest_fen: int
    paid_fen: int
    status: str  # PAID, PARTIALLY_PAID, OVERDUE, DUE, UPCOMING, WAIVED, WRITTEN_OFF

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.fee_fen + self.interest_fen


@dataclass(frozen=True)
class LoanView:
    loan: Loan
    as_of: datetime
    outstanding: Allocation
    allowance_fen: int
    overdue_fen: int
    days_past_due: int
    bucket: Bucket
    status: str  # ACTIVE, REPAID, PAID_OFF, WRITTEN_OFF
    schedule: tuple[InstalmentView, ...]


_STATE_SQL = """
select loan_id, closed, principal_fen, fees_fen, interest_fen, late_fees_fen, allowance_fen, overdue_fen,
       days_past_due, paid_principal_fen, paid_fees_fen, paid_interest_fen
  from ledger.credit_loan_state(%s, %s, %s)
"""


def loan_views(conn: psycopg.Connection[Any], loan_ids: Sequence[str], *, as_of: datetime | None = None
               ) -> dict[str, LoanView]:
    """Views of many loans in a constant number of queries."""
    at = as_of or datetime.now(UTC)
    on = calendar.business_date(at)
    loans = get_loans(conn, loan_ids)
    write_off_dpd = load_settings(conn, on).write_off_dpd
    views = {}
    for row in conn.execute(_STATE_SQL, (at, on, list(loans))).fetchall():
        loan = loans[row[0]]
        closed = row[1]
        owed = Allocation(late_fees_fen=int(row[5]), fees_fen=int(row[3]), interest_fen=int(row[4]),
                          principal_fen=int(row[2]))
        schedule = _schedule(loan, on, closed, [int(row[9]), int(row[10]), int(row[11])])
        repaid = all(i.status == "PAID" for i in schedule) and owed.total_fen == 0
        status = {"paid_off": "PAID_OFF", "written_off": "WRITTEN_OFF"}.get(closed or "",
                                                                          "REPAID" if repaid else "ACTIVE")
        views[loan.id] = LoanView(loan, at, owed, int(row[6]), int(row[7]), int(row[8]),
                                  Bucket.of(int(row[8]), closed == "written_off", write_off_dpd), status, schedule)
    return views


def loan_view(conn: psycopg.Connection[Any], loan_id: str, *, as_of: datetime | None = None) -> LoanView:
    view = loan_views(conn, [loan_id], as_of=as_of).get(loan_id)
    if view is None:
        raise LoanNotFound(f"no loan {loan_id}", loan_id=loan_id)
    return view


def _schedule(loan: Loan, on: date, closed: str | None, paid: list[int]) -> tuple[InstalmentView, ...]:
    left = list(paid)  # principal, fees, interest still to allocate, oldest instalment first
    out = []
    for i in loan.schedule:
        parts = [i.principal_fen, i.fee_fen, i.interest_fen]
        took = [min(part, remaining) for part, remaining in zip(parts, left, strict=True)]
        left = [remaining - t for remaining, t in zip(left, took, strict=True)]
        paid_fen = sum(took)
        total = sum(parts)
        if paid_fen == total:
            status = "PAID"
        elif closed == "paid_off":
            status = "WAIVED"
        elif closed == "written_off":
            status = "WRITTEN_OFF"
        elif i.due_date < on:
            status = "OVERDUE"
        elif paid_fen:
            status = "PARTIALLY_PAID"
        else:
            status = "DUE" if i.due_date == on else "UPCOMING"
        out.append(InstalmentView(i.number, i.due_date, i.principal_fen, i.fee_fen, i.interest_fen, paid_fen, status))
    return tuple(out)


def list_loans(
    conn: psycopg.Connection[Any], *, customer_id: str | None = None, bucket: Bucket | None = None,
    after_seq: int | None = None, limit: int = 100,
) -> list[LoanView]:
    """Loans in opening order, keyset-paginated, optionally one customer's and one bucket's."""
    if not 0 <= limit <= page_size_max:
        raise ValidationError(f"first must be between 0 and {page_size_max}, got {limit}", field="first")
    at = datetime.now(UTC)
    ids = None
    if customer_id is not None:
        ids = [r[0] for r in conn.execute("select id from ledger.loans where customer_id = %s", (customer_id,))]
    rows = conn.execute(
        """select s.loan_id from ledger.credit_loan_state(%(at)s, %(on)s, %(ids)s) s
             join ledger.loans l on l.id = s.loan_id
            where (%(bucket)s::text is null
                   or ledger.credit_bucket(s.days_past_due, s.closed, %(write_off_dpd)s) = %(bucket)s)
              and (%(after)s::bigint is null or l.seq > %(after)s)
            order by l.seq limit %(limit)s""",
        {"at": at, "on": calendar.business_date(at), "ids": ids, "bucket": bucket.value if bucket else None,
         "write_off_dpd": load_settings(conn, calendar.business_date(at)).write_off_dpd, "after": after_seq,
         "limit": limit}).fetchall()
    views = loan_views(conn, [r[0] for r in rows], as_of=at)
    return [views[r[0]] for r in rows]
