"""`ledger-core factoring accrue`: the daily fee job over every open factoring advance.

Shows progress on a terminal (stderr). Running a date twice posts nothing the second time, so a
scheduler may simply retry.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import psycopg

from ledger import calendar
from ledger.products import factoring_accrual
from ledger_cli.options import add_database_options, connection_url

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("factoring", help="factoring advances: the daily fee accrual")
    commands = parser.add_subparsers(dest="factoring_command", required=True, metavar="FACTORING_COMMAND")
    accrue = commands.add_parser("accrue", help="accrue every open advance's fee through a date (idempotent)")
    add_database_options(accrue)
    accrue.add_argument("--date", default=None, help="business date, YYYY-MM-DD (default: today)")
    accrue.set_defaults(run=_accrue)


def _accrue(args: argparse.Namespace) -> int:
    on = calendar.today() if args.date is None else calendar.parse_date(args.date, field="date")
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        run = factoring_accrual.accrue_factoring_fees(conn, on, progress=sys.stderr)
    print(f"factoring fees through {run.on}: {run.fee_fen:,} fen on {run.advances_accrued:,} advances "
          f"in {run.batches} batches")
    return 0
