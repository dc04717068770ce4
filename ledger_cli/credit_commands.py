"""`ledger-core credit run-day --date YYYY-MM-DD`: the consumer-credit daily job.

With `--from` it runs every date from there to `--date` in order (catching up after an outage).
Progress goes to stderr when it is a terminal; the summary of each date to stdout.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import psycopg

from ledger import calendar
from ledger.products.credit_day import DayReport, run_credit_day, run_credit_days
from ledger_cli.options import add_database_options, connection_url


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("credit", help="consumer credit jobs")
    commands = parser.add_subparsers(dest="credit_command", required=True, metavar="COMMAND")
    run_day = commands.add_parser(
        "run-day", help="bill what fell due, charge late fees, provision and write off for a date (idempotent)")
    add_database_options(run_day)
    run_day.add_argument("--date", required=True, help="business date, YYYY-MM-DD")
    run_day.add_argument("--from", dest="first", default=None,
                         help="run every date from this one to --date, in order")
    run_day.set_defaults(run=_run_day)


def _say(report: DayReport) -> None:
    print(f"{report.date}: bills {report.bills}, late fees {report.late_fees}, "
          f"provisions {report.provisions}, write-offs {report.write_offs}")


def _say_if_posted(report: DayReport) -> None:
    if report.bills or report.late_fees or report.provisions or report.write_offs:
        _say(report)


def _run_day(args: argparse.Namespace) -> int:
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        on = calendar.parse_date(args.date, field="date")
        if args.first is None:
            _say(run_credit_day(conn, on, progress=sys.stderr))
            return 0
        first = calendar.parse_date(args.first, field="from")
        run_credit_days(conn, first, on, progress=sys.stderr, on_day=_say_if_posted)
    return 0
