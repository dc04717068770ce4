"""The consumer-credit day: one set-based pass over every loan for a business date.

In order, each step a SQL query over all loans whose results are posted in batches:
1. bill what fell due (Dr fee / interest receivable / Cr income), effective on each due date;
2. charge a late fee on each overdue loan: overdue amount x the loan's daily rate, rounded
   half-up to the fen, at least 1 fen, while days past due stay within `late_fee_stop_dpd`;
3. provision by delinquency bucket (Dr provision expense / Cr allowance, or the reverse to
   release), and write off loans past `write_off_dpd` (Dr allowance / Cr every receivable).

Every posting's idempotency key names the loan and the date (or the instalment), and each query
skips keys already posted, so running a date again posts nothing new. The state a day is judged
on is the journal as of the start of that day (its own postings included for step 3), so a late
run of an old date gives the same answer a timely one would have.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TextIO

import psycopg

from ledger import calendar
from ledger.accounts import Side
from ledger.database_transaction import database_transaction
from ledger.errors import ValidationError
from ledger.posting import Leg, Transfer, post
from ledger.products.credit import (
    FEE_INCOME,
    INTEREST_INCOME,
    LATE_FEE_INCOME,
    PROVISION_EXPENSE,
    Bucket,
    CreditSettings,
    allowance_account,
    ensure_credit_accounts,
    fees_account,
    interest_account,
    late_fees_account,
    load_settings,
    lock_loan,
    principal_account,
    record_steps,
)
from ledger.products.credit_repay import bill_key, outstanding
from ledger.progress import Progress

__all__ = ["DayReport", "run_credit_day", "run_credit_days", "batch_size_max", "days_per_run_max"]

batch_size_max = 200        # transactions per post() call: the core notifies touched accounts in one
                            # pg_notify (payload under 8000 bytes), at most 2 accounts a loan here
days_per_run_max = 3660     # run_credit_days refuses a longer range: ten years of catch-up
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class DayReport:
    date: date
    bills: int
    late_fees: int
    provisions: int
    write_offs: int


@dataclass(frozen=True)
class _Step:
    transfer: Transfer | None  # None: a write-off, built under the loan's lock when it is posted
    loan_id: str
    step: str
    on: date | None = None

    @property
    def closes(self) -> bool:
        return self.step == "write_off"


_BILLS_SQL = """
select i.loan_id, i.plan_no, i.number, i.due_date, i.fee_fen, i.interest_fen
  from ledger.loan_instalments i
  join (select p.loan_id, max(p.plan_no) as plan_no from ledger.loan_plans p group by p.loan_id) cur
    using (loan_id, plan_no)
 where i.due_date <= %(on)s and i.fee_fen + i.interest_fen > 0
   and not exists (select 1 from ledger.loan_closures c where c.loan_id = i.loan_id)
   and not exists (select 1 from ledger.transactions t
                    where t.idempotency_key = 'credit:bill:' || i.loan_id || ':' || i.plan_no || ':' || i.number)
 order by i.due_date, i.loan_id, i.number
"""

_LATE_FEES_SQL = """
select s.loan_id, greatest(1, round(s.overdue_fen * l.late_fee_rate_per_day))::bigint, s.overdue_fen
  from ledger.credit_loan_state(%(before)s, %(on)s) s
  join ledger.loans l on l.id = s.loan_id
 where s.closed is null and s.overdue_fen > 0 and s.days_past_due <= %(stop_dpd)s
   and not exists (select 1 from ledger.transactions t
                    where t.idempotency_key = 'credit:late_fee:' || s.loan_id || ':' || %(on)s::text)
 order by l.seq
"""

# Target allowance per loan: its bucket's rate x everything it owes; all of it past the
# write-off line; nothing once closed (a recovery credited to a written-off loan's allowance
# is released to the expense it reduces).
_PROVISIONS_SQL = """
with s as (
    select s.*, l.seq,
           s.principal_fen + s.fees_fen + s.interest_fen + s.late_fees_fen as owed_fen,
           case when s.closed is not null then 'closed'
                else ledger.credit_bucket(s.days_past_due, s.closed, %(write_off_dpd)s) end as bucket
      from ledger.credit_loan_state(%(before)s, %(on)s) s join ledger.loans l on l.id = s.loan_id),
t as (
    select s.*, case s.bucket when 'closed' then 0 when 'write_off' then s.owed_fen
                else round(s.owed_fen * (%(rates)s::jsonb ->> s.bucket)::numeric) end::bigint as target_fen
      from s)
select t.loan_id, t.bucket, t.target_fen - t.allowance_fen
  from t
 where (t.target_fen <> t.allowance_fen or t.bucket = 'write_off')
   and not exists (select 1 from ledger.transactions x
                    where x.idempotency_key = 'credit:provision:' || t.loan_id || ':' || %(on)s::text)
 order by t.seq
"""


def run_credit_day(conn: psycopg.Connection[Any], on: date, *, progress: TextIO | None = sys.stderr) -> DayReport:
    """Bill, charge late fees, provision and write off for business date `on` (idempotent)."""
    _check_day(on)
    ensure_credit_accounts(conn)
    return _run_day(conn, on, progress, load_settings(conn, on))


def run_credit_days(
    conn: psycopg.Connection[Any], first: date, last: date, *, progress: TextIO | None = sys.stderr,
    on_day: Callable[[DayReport], None] = lambda report: None,
) -> list[DayReport]:
    """Every date from `first` to `last` in order: catching up after an outage, or a demo."""
    days = (last - first).days + 1
    if not 1 <= days <= days_per_run_max:
        raise ValidationError(f"a run covers 1 to {days_per_run_max} days, got {first} to {last}", field="date")
    ensure_credit_accounts(conn)
    meter = Progress(progress, days, "credit days")
    reports = []
    for offset in range(days):
        on = first + timedelta(days=offset)
        report = _run_day(conn, on, None, load_settings(conn, on))
        on_day(report)
        reports.append(report)
        meter.advance()
    meter.finish()
    return reports


def _check_day(on: object) -> None:
    if not isinstance(on, date) or on > calendar.today():
        raise ValidationError(f"date must be a business date no later than today, got {on!r}", field="date")


def _run_day(conn: psycopg.Connection[Any], on: date, progress: TextIO | None, settings: CreditSettings) -> DayReport:
    """The day's run with the settings in force on it."""
    _check_day(on)
    bills = _post_all(conn, on, list(_bills(conn, on)), progress, f"{on} bills")
    late = _post_all(conn, on, list(_late_fees(conn, on, settings)), progress, f"{on} late fees")
    steps = list(_provisions(conn, on, settings))
    _post_all(conn, on, steps, progress, f"{on} provisions")
    write_offs = sum(1 for s in steps if s.closes)  # a write-off found nothing owed counts too
    report = DayReport(on, bills, late, len(steps) - write_offs, write_offs)
    conn.execute("""insert into ledger.credit_day_runs (run_date, bills, late_fees, provisions, write_offs)
                    values (%s, %s, %s, %s, %s)""", (on, report.bills, report.late_fees, report.provisions,
                                                     report.write_offs))
    return report


def _bills(conn: psycopg.Connection[Any], on: date) -> Iterator[_Step]:
    for loan_id, plan_no, number, due, fee, interest in conn.execute(_BILLS_SQL, {"on": on}):
        legs = []
        if fee:
            legs += [Leg(fees_account(loan_id), Side.DEBIT, fee), Leg(FEE_INCOME, Side.CREDIT, fee)]
        if interest:
            legs += [Leg(interest_account(loan_id), Side.DEBIT, interest), Leg(INTEREST_INCOME, Side.CREDIT, interest)]
        yield _Step(Transfer(bill_key(loan_id, plan_no, number), "credit.bill", legs,
                             description=f"instalment {number} of {loan_id} due {due}",
                             effective_at=calendar.day_start(due),
                             metadata={"loan_id": loan_id, "instalment": number, "due_date": due.isoformat()}),
                    loan_id, "bill")


def _late_fees(conn: psycopg.Connection[Any], on: date, settings: CreditSettings) -> Iterator[_Step]:
    rows = conn.execute(_LATE_FEES_SQL, {"before": calendar.day_start(on), "on": on,
                                         "stop_dpd": settings.late_fee_stop_dpd}).fetchall()
    for loan_id, fee, overdue in rows:
        yield _Step(Transfer(f"credit:late_fee:{loan_id}:{on.isoformat()}", "credit.late_fee", [
            Leg(late_fees_account(loan_id), Side.DEBIT, int(fee)), Leg(LATE_FEE_INCOME, Side.CREDIT, int(fee))],
            description=f"late fee on {overdue} fen overdue", effective_at=calendar.day_start(on),
            metadata={"loan_id": loan_id, "date": on.isoformat(), "overdue_fen": int(overdue)}), loan_id, "late_fee")


def _provisions(conn: psycopg.Connection[Any], on: date, settings: CreditSettings) -> Iterator[_Step]:
    rates = json.dumps({b.value: str(r) for b, r in settings.provision_rates.items()})
    rows = conn.execute(_PROVISIONS_SQL, {"before": calendar.day_start(on) + _MICROSECOND, "on": on, "rates": rates,
                                          "write_off_dpd": settings.write_off_dpd}).fetchall()
    at = calendar.day_start(on)
    for loan_id, bucket, delta in rows:
        delta = int(delta)
        if delta:
            expense, allowance = Leg(PROVISION_EXPENSE, Side.DEBIT, abs(delta)), Leg(
                allowance_account(loan_id), Side.CREDIT, abs(delta))
            if delta < 0:  # release: the reverse of a provision
                expense, allowance = (Leg(PROVISION_EXPENSE, Side.CREDIT, -delta),
                                      Leg(allowance_account(loan_id), Side.DEBIT, -delta))
            yield _Step(Transfer(f"credit:provision:{loan_id}:{on.isoformat()}", "credit.provision",
                                 [expense, allowance], description=f"provision for {loan_id}, bucket {bucket}",
                                 effective_at=at, metadata={"loan_id": loan_id, "bucket": bucket,
                                                            "date": on.isoformat()}), loan_id, "provision")
        if bucket == Bucket.WRITE_OFF.value:
            yield _Step(None, loan_id, "write_off", on)


def _write_off(conn: psycopg.Connection[Any], loan_id: str, on: date) -> Transfer | None:
    """Dr allowance / Cr each receivable, for what the loan owes now (under its lock, so a
    repayment cannot slip in between): a late run never credits more than is there."""
    lock_loan(conn, loan_id)
    owed = outstanding(conn, loan_id)
    amounts = [owed.principal_fen, owed.fees_fen, owed.interest_fen, owed.late_fees_fen]
    if owed.total_fen <= 0:
        return None
    accounts = [principal_account(loan_id), fees_account(loan_id), interest_account(loan_id),
                late_fees_account(loan_id)]
    legs = [Leg(allowance_account(loan_id), Side.DEBIT, owed.total_fen)]
    legs += [Leg(code, Side.CREDIT, amount) for code, amount in zip(accounts, amounts, strict=True) if amount > 0]
    return Transfer(f"credit:write_off:{loan_id}", "credit.write_off", legs, description=f"write-off of {loan_id}",
                    effective_at=calendar.day_start(on), metadata={"loan_id": loan_id, "date": on.isoformat()})


def _post_all(conn: psycopg.Connection[Any], on: date, steps: list[_Step], progress: TextIO | None,
              label: str) -> int:
    meter = Progress(progress, len(steps), label) if steps else None
    for start in range(0, len(steps), batch_size_max):
        batch = steps[start:start + batch_size_max]
        with database_transaction(conn):
            built = [(s, s.transfer or _write_off(conn, s.loan_id, on)) for s in batch]
            ready = [(s, transfer) for s, transfer in built if transfer is not None]
            if not ready:
                continue
            batch = [s for s, _ in ready]
            posted = post(conn, [transfer for _, transfer in ready])
            record_steps(conn, [(p.transaction_id, s.loan_id, s.step, on) for p, s in zip(posted, batch, strict=True)])
            closures = [(s.loan_id, p.transaction_id) for p, s in zip(posted, batch, strict=True) if s.closes]
            if closures:
                conn.execute(
                    """insert into ledger.loan_closures (loan_id, reason, business_date, transaction_id)
                       select l, 'written_off', %s, t from unnest(%s::text[], %s::bigint[]) u(l, t)
                       on conflict (loan_id) do nothing""",
                    (on, [c[0] for c in closures], [c[1] for c in closures]))
        if meter is not None:
            meter.advance(len(batch))
    if meter is not None:
        meter.finish()
    return len(steps)
