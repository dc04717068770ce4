"""`ledger-core account status|limits|history` and `ledger-core transactions`: the account
lifecycle and finding transactions from the command line, for an operator who holds the
database's credentials (so acts as an admin). The rules are the same functions' as the API's."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

import psycopg

from ledger import account_lifecycle, calendar
from ledger.accounts import AccountStatus, get_account
from ledger.cursors import decode_cursor, encode_cursor
from ledger.errors import ValidationError
from ledger.money import parse_signed_amount
from ledger.transaction_search import TransactionFilter, find_transactions, position_fields, position_of
from ledger_cli.options import add_database_options, connection_url

_STATUSES = {"active": AccountStatus.OPEN, "frozen": AccountStatus.FROZEN, "closed": AccountStatus.CLOSED}
_NAMES = {status.value: name for name, status in _STATUSES.items()}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("account", help="freeze, close or reopen an account; change its limits")
    commands = parser.add_subparsers(dest="account_command", required=True, metavar="COMMAND")

    status = commands.add_parser("status", help="set an account's status (active, frozen, closed) with a reason")
    add_database_options(status)
    status.add_argument("code")
    status.add_argument("status", choices=sorted(_STATUSES))
    status.add_argument("--reason", required=True, help="why (1 to 500 characters), kept in the history")
    status.set_defaults(run=_status)

    limits = commands.add_parser(
        "limits", help="set the lowest and highest allowed balance (minor units); an option left out keeps "
                       "its value, `none` makes it unbounded")
    add_database_options(limits)
    limits.add_argument("code")
    limits.add_argument("--min", dest="min_balance", default=None)
    limits.add_argument("--max", dest="max_balance", default=None)
    limits.set_defaults(run=_limits)

    history = commands.add_parser("history", help="an account's status and limit changes, newest first")
    add_database_options(history)
    history.add_argument("code")
    history.set_defaults(run=_history)

    find = subparsers.add_parser("transactions", help="find transactions by kind, account, metadata or time, "
                                                      "newest first")
    add_database_options(find)
    find.add_argument("--kind")
    find.add_argument("--account")
    find.add_argument("--metadata", help="a JSON object the metadata contains")
    for name in ("effective-from", "effective-to", "recorded-from", "recorded-to"):
        find.add_argument(f"--{name}", help="YYYY-MM-DD (start of that business day) or ISO time with offset")
    find.add_argument("--first", type=int, default=50)
    find.add_argument("--after", help="the cursor printed after the previous page")
    find.set_defaults(run=_find)


def _limit(text: str | None, current: int | None, field: str) -> int | None:
    if text is None:
        return current
    if text.strip().lower() == "none":
        return None
    return parse_signed_amount(text.strip(), field=field)


def _status(args: argparse.Namespace) -> int:
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        account, changed = account_lifecycle.set_status(conn, args.code, _STATUSES[args.status], args.reason)
    print(f"{account.code}: {_NAMES[account.status]}" + ("" if changed else " (unchanged)"))
    return 0


def _limits(args: argparse.Namespace) -> int:
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        current = get_account(conn, args.code)
        account, changed = account_lifecycle.set_limits(
            conn, args.code, _limit(args.min_balance, current.min_balance, "min"),
            _limit(args.max_balance, current.max_balance, "max"))
    print(f"{account.code}: min {_bound(account.min_balance)}, max {_bound(account.max_balance)}"
          + ("" if changed else " (unchanged)"))
    return 0


def _bound(value: int | None) -> str:
    return "none" if value is None else str(value)


def _history(args: argparse.Namespace) -> int:
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        account = get_account(conn, args.code)
        statuses = account_lifecycle.status_history(conn, account.id, limit=1000)
        limits = account_lifecycle.limit_history(conn, account.id, limit=1000)
    print(f"{account.code}: {_NAMES[account.status]}")
    for change in statuses:
        print(f"  {change.changed_at.isoformat()}  status {_NAMES[change.status]}: {change.reason}")
    for version in limits:
        print(f"  {version.changed_at.isoformat()}  limits min {_bound(version.min_balance)}, "
              f"max {_bound(version.max_balance)}")
    return 0


def _instant(text: str | None, field: str) -> datetime | None:
    return None if text is None else calendar.parse_instant(text, field=field)


def _find(args: argparse.Namespace) -> int:
    metadata = None
    if args.metadata is not None:
        try:
            metadata = json.loads(args.metadata)
        except ValueError:
            raise ValidationError("--metadata must be a JSON object", field="metadata") from None
    wanted = TransactionFilter(kind=args.kind, account_code=args.account, metadata=metadata,
                               effective_from=_instant(args.effective_from, "effectiveFrom"),
                               effective_to=_instant(args.effective_to, "effectiveTo"),
                               recorded_from=_instant(args.recorded_from, "recordedFrom"),
                               recorded_to=_instant(args.recorded_to, "recordedTo"))
    if not 1 <= args.first <= 1000:
        raise ValidationError("--first must be between 1 and 1000", field="first")
    position = decode_cursor(args.after, fields=position_fields(wanted)) if args.after else None
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        rows = find_transactions(conn, wanted, after=position, limit=args.first + 1)
    for row in rows[:args.first]:
        print(f"{row.id}\t{row.effective_at.isoformat()}\t{row.kind}\t{row.idempotency_key}\t"
              f"{json.dumps(row.metadata, ensure_ascii=False)}")
    if len(rows) > args.first:
        print(f"more: --after {encode_cursor(position_of(wanted, rows[args.first - 1]))}")
    return 0
