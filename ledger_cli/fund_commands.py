"""`ledger-core fund ...`: create a fund, publish a day's income, publish figures from a CSV.

Income passes over many holders show progress on a terminal (stderr).
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg

from ledger import calendar
from ledger.errors import ValidationError
from ledger.products import fund, fund_income
from ledger_cli.options import add_database_options, connection_url

__all__ = ["register", "csv_figures"]

csv_days_max = 1_000  # figures one import publishes; the published history is 427 days


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("fund", help="the money-market fund: create, publish income")
    commands = parser.add_subparsers(dest="fund_command", required=True, metavar="FUND_COMMAND")

    create = commands.add_parser("create", help="create a fund (idempotent)")
    add_database_options(create)
    create.add_argument("--fund", required=True, help="fund id, e.g. YEB")
    create.add_argument("--name", required=True)
    create.set_defaults(run=_create)

    publish = commands.add_parser(
        "publish-income", help="record a day's income per 10,000 units and credit every holder")
    add_database_options(publish)
    publish.add_argument("--fund", required=True)
    publish.add_argument("--date", required=True, help="business date, YYYY-MM-DD")
    publish.add_argument("--income", required=True, help="income per 10,000 units, e.g. 1.7807")
    publish.set_defaults(run=_publish)

    replay = commands.add_parser(
        "publish-csv", help="publish the figures of a CSV (mfd_date,mfd_daily_yield,...) in date order")
    add_database_options(replay)
    replay.add_argument("--fund", required=True)
    replay.add_argument("--csv", required=True, type=Path)
    replay.add_argument("--from", dest="date_from", required=True, help="YYYY-MM-DD")
    replay.add_argument("--to", dest="date_to", required=True, help="YYYY-MM-DD")
    replay.set_defaults(run=_publish_csv)


def csv_figures(path: Path, date_from: date, date_to: date) -> list[tuple[date, str]]:
    """(date, income per 10k) from a published-figures CSV, in date order, within the range."""
    if not path.is_file():
        raise ValidationError(f"no CSV file at {path}", field="csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [(datetime.strptime(row["mfd_date"], "%Y%m%d").date(), row["mfd_daily_yield"])
                for row in csv.DictReader(handle)]
    chosen = sorted(row for row in rows if date_from <= row[0] <= date_to)
    if len(chosen) > csv_days_max:
        raise ValidationError(f"at most {csv_days_max} days per import, got {len(chosen)}", field="to")
    return chosen


def _create(args: argparse.Namespace) -> int:
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        created, is_new = fund.create_fund(conn, args.fund, args.name)
    print(f"fund {created.fund_id} ({created.name}) {'created' if is_new else 'exists'}")
    return 0


def _say(run: fund_income.IncomeRun) -> None:
    state = "already distributed" if run.replayed else "distributed"
    print(f"{run.fund_id} {run.income_date} at {run.income_per_10k}: {run.income_fen:,} fen to "
          f"{run.holders:,} holders in {run.transactions:,} transactions ({state})")


def _publish(args: argparse.Namespace) -> int:
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        day = calendar.parse_date(args.date, field="date")
        _say(fund_income.publish_income(conn, args.fund, day, args.income, progress=sys.stderr))
    return 0


def _publish_csv(args: argparse.Namespace) -> int:
    figures = csv_figures(args.csv, calendar.parse_date(args.date_from, field="from"),
                          calendar.parse_date(args.date_to, field="to"))
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        for day, income in figures:
            _say(fund_income.publish_income(conn, args.fund, day, income, progress=sys.stderr))
    return 0
