"""The demo's consumer credit: loans in every delinquency bucket, run day by day up to today.

Purchases are backdated so that, once the daily job has run every date up to today, one loan sits
in each bucket (current, 1-30, 31-60, 61-90, 91-180 and written off, then partly recovered);
beside them a purchase converted into instalments and partly repaid, a bank-style annuity loan
repaid on time, and a purchase paid off early. Dates derive from the demo's anchor and keys are
`demo:credit:...`, so a second load replays, and the job only adds the days since the last load.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from ledger import calendar
from ledger.accounts import Side
from ledger.demo.anchor import demo_anchor, history_days
from ledger.posting import Leg, Transfer, post
from ledger.products import chart, credit, credit_day, credit_repay

__all__ = ["load_credit_demo", "DEMO_LOANS"]

# (key, customer, merchant, amount in fen, days before the demo's today it was bought)
DEMO_LOANS = (
    ("current", "U1001", "M2001", 12900, 10),
    ("dpd_1_30", "U1002", "M2002", 45600, 30 + 12),
    ("dpd_31_60", "U1003", "M2001", 23800, 30 + 45),
    ("dpd_61_90", "U1001", "M2002", 8800, 30 + 80),
    ("dpd_91_180", "U1002", "M2001", 31000, 30 + 130),
    ("written_off", "U1003", "M2002", 15500, 30 + 195),
)
_LINES_FEN = {"U1001": 500_000, "U1002": 800_000, "U1003": 300_000}
_TOP_UP_FEN = 400_000  # wallet money for the repayments, through the bank like any top-up
_BANK = "icbc"


def _at(day: date, hour: int = 10) -> datetime:
    return calendar.day_start(day) + timedelta(hours=hour)


def load_credit_demo(conn: psycopg.Connection[Any]) -> None:
    # The demo's today, fixed at first load.
    today = calendar.business_date(demo_anchor(conn)) + timedelta(days=history_days)
    first = today - timedelta(days=max(days for *_, days in DEMO_LOANS))
    for customer, limit in _LINES_FEN.items():
        credit.open_credit_line(conn, customer, limit)
    loans = {name: credit.purchase_on_credit(conn, f"demo:credit:{name}", customer, merchant, amount,
                                             _at(today - timedelta(days=days)))
             for name, customer, merchant, amount, days in DEMO_LOANS}
    _top_up(conn, "U1001", _at(first, 8))
    bought = today - timedelta(days=100)
    converted = credit.purchase_on_credit(conn, "demo:credit:instalments", "U1001", "M2001", 100000, _at(bought))
    converted = credit.convert_to_instalments(conn, "demo:credit:instalments:convert", converted.id, 6, "0.005",
                                              converted_at=_at(bought, 11))
    annuity = credit.originate_loan(conn, "demo:credit:annuity", "U1001", 1_000_000, "0.01", 12,
                                    credit.Method.ANNUITY, today - timedelta(days=95))
    early = credit.purchase_on_credit(conn, "demo:credit:early", "U1001", "M2002", 60000, _at(bought, 12))
    credit.convert_to_instalments(conn, "demo:credit:early:convert", early.id, 3, "0.005",
                                  converted_at=_at(bought, 12))
    _run(conn, first, today - timedelta(days=1), loans, converted, annuity, early)
    credit_day.run_credit_days(conn, today, calendar.today(), progress=None)


def _run(conn: psycopg.Connection[Any], first: date, last: date, loans: dict[str, credit.Loan],
         converted: credit.Loan, annuity: credit.Loan, early: credit.Loan) -> None:
    """Run the days in order, repaying on the way: the converted purchase's first two instalments
    on time, every annuity instalment on its due date, the early one paid off after a month."""
    repayments = {i.due_date: (converted, i.total_fen, f"i{i.number}") for i in converted.schedule[:2]}
    annuity_due = {i.due_date: (annuity, i.total_fen, f"a{i.number}") for i in annuity.schedule}
    payoff_day = early.schedule[0].due_date - timedelta(days=3)

    def pay(report: credit_day.DayReport) -> None:
        day = report.date
        for due in (repayments.get(day), annuity_due.get(day)):
            if due is not None:
                loan, amount, tag = due
                credit_repay.repay_loan(conn, f"demo:credit:repay:{tag}", loan.id, amount, paid_at=_at(day, 15))
        if day == payoff_day:
            credit_repay.pay_off_loan(conn, "demo:credit:early:payoff", early.id, paid_at=_at(day, 16))

    credit_day.run_credit_days(conn, first, last, progress=None, on_day=pay)
    written_off = loans["written_off"]
    if conn.execute("select 1 from ledger.loan_closures where loan_id = %s and reason = 'written_off'",
                    (written_off.id,)).fetchone():
        credit_repay.recover_loan(conn, "demo:credit:recover", written_off.id, 5000, recovered_at=_at(last, 17))


def _top_up(conn: psycopg.Connection[Any], customer: str, at: datetime) -> None:
    post(conn, [
        Transfer(f"demo:credit:topup:{customer}", "wallet.top_up", [
            Leg(chart.bank_clearing(_BANK), Side.DEBIT, _TOP_UP_FEN),
            Leg(chart.wallet(customer), Side.CREDIT, _TOP_UP_FEN)], description="Top-up for loan repayments",
            effective_at=at),
        Transfer(f"demo:credit:topup:{customer}:settle", "wallet.top_up_settled", [
            Leg(chart.bank_reserve(_BANK), Side.DEBIT, _TOP_UP_FEN),
            Leg(chart.bank_clearing(_BANK), Side.CREDIT, _TOP_UP_FEN)], description="The bank settled the top-up",
            effective_at=at + timedelta(hours=6))])
