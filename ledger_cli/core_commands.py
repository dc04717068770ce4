"""Core commands: migrate, verify, close-period, balance-checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import psycopg

from ledger import calendar
from ledger.audit import audit_digest, verify
from ledger.balance_checkpoints import every_entries_default, sweep_all
from ledger.migrate import migrate
from ledger.periods import close_period
from ledger_cli.options import add_database_options, connection_url


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("migrate", help="apply pending migrations, then changed definitions (safe to run twice)")
    add_database_options(parser)
    parser.set_defaults(run=_migrate)

    parser = subparsers.add_parser(
        "verify", help="rebuild balances from the entries; check projection, hash chains, trial balance")
    add_database_options(parser)
    parser.add_argument("--all", action="store_true", help="report every problem, not only the first")
    parser.add_argument("--digest", default=None,
                        help="also prove the journal extends, unchanged, the one this digest (v2:...) was taken of")
    parser.add_argument("--checkpoint-file", type=Path, default=None,
                        help="a file of `ledger-core checkpoint --export` (kept outside the database) that names "
                             "the damaged account; without --digest, its digest is checked")
    parser.set_defaults(run=_verify)

    parser = subparsers.add_parser(
        "close-period",
        help="close the books up to a time (ISO 8601 with an offset, or a date: the start of that business day)")
    add_database_options(parser)
    parser.add_argument("until")
    parser.set_defaults(run=_close_period)

    parser = subparsers.add_parser(
        "balance-checkpoints",
        help="bring every account's balance checkpoints up to date (run it regularly, e.g. every minute)",
        description="Sweeps each account with at least --min-new entries recorded since its last sweep, so that "
                    "statements and balances as of any time read a bounded number of entries.")
    add_database_options(parser)
    parser.add_argument("--every", type=int, default=every_entries_default,
                        help=f"entries between two checkpoints of an account (default {every_entries_default:,})")
    parser.add_argument("--min-new", type=int, default=None,
                        help="sweep an account once this many entries were recorded since its last sweep "
                             "(default: --every)")
    parser.set_defaults(run=_balance_checkpoints)


def _migrate(args: argparse.Namespace) -> int:
    applied = migrate(connection_url(args))
    print("applied: " + ", ".join(applied) if applied else "up to date")
    return 0


def _verify(args: argparse.Namespace) -> int:
    if args.digest is not None or args.checkpoint_file is not None:
        from ledger.checkpoints import verify_digest_command  # the digest check is ledger/checkpoints.py's

        return verify_digest_command(connection_url(args), args.digest, args.checkpoint_file)
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        report = verify(conn, say=print, stop_at_first=not args.all)
        digest = audit_digest(conn)
        from ledger.checkpoints import take_digest

        positioned = take_digest(conn)  # carries its journal position, so it can be checked later
    if not report.ok:
        for problem in report.problems:
            print(f"BROKEN: {problem}")
        return 1
    print(f"digest: {digest.digest} over {digest.accounts:,} chain heads, {digest.entries:,} entries")
    print(f"keep to check later with `ledger-core verify --digest`: {positioned.digest}")
    print("OK: projection equals entries, every chain intact, every transaction and currency balances")
    return 0


def _close_period(args: argparse.Namespace) -> int:
    until = calendar.parse_instant(args.until, field="until")
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        close_period(conn, until)
    print(f"closed until {until.isoformat()}")
    return 0




def _balance_checkpoints(args: argparse.Namespace) -> int:
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        report = sweep_all(conn, every=args.every, min_new=args.min_new)
    print(f"swept {report.accounts:,} accounts ({report.entries:,} entries recorded since their last sweep); "
          f"{report.checkpoints:,} balance checkpoints written")
    return 0
