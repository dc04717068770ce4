"""`ledger-core credit run-day --date YYYY-MM-DD`: the consumer-credit daily job; and
`ledger-core credit settings show|history|set`: the product's settings.

With `--from` run-day runs every date from there to `--date` in order (catching up after an
outage). Progress goes to stderr when it is a terminal; the summary of each date to stdout.

`settings set --effective-from YYYY-MM-DD name=value ...` schedules a change from a later
business day, as `setCreditSettings` does; names are the stored ones (`late_fee_rate_per_day`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import psycopg

from ledger import calendar
from ledger.errors import ValidationError
from ledger.products import credit_settings
from ledger.products import settings as versions
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
    settings = commands.add_parser("settings", help="show, list the history of, or change the product's settings")
    actions = settings.add_subparsers(dest="settings_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="the settings in force on a business day")
    add_database_options(show)
    show.add_argument("--on", default=None, help="business date, YYYY-MM-DD (default today)")
    show.set_defaults(run=_show_settings)
    history = actions.add_parser("history", help="every change, the latest recorded first")
    add_database_options(history)
    history.add_argument("--first", type=int, default=20, help="how many changes (default 20)")
    history.set_defaults(run=_settings_history)
    change = actions.add_parser("set", help="change settings from a later business day (never retroactively)")
    add_database_options(change)
    change.add_argument("--effective-from", required=True, help="business date, YYYY-MM-DD, after today")
    change.add_argument("values", nargs="+", metavar="NAME=VALUE",
                        help=f"one of {', '.join(_setting_names())}")
    change.set_defaults(run=_set_settings)


def _setting_names() -> list[str]:
    names = [*credit_settings.INT_SETTINGS, *credit_settings.RATE_SETTINGS, "payoff_remaining_fees"]
    return sorted(names)


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


def _print_settings(values: credit_settings.CreditSettings) -> None:
    print(f"in force on {values.on}")
    print(f"interest_free_days {values.interest_free_days}")
    print(f"late_fee_rate_per_day {values.late_fee_rate_per_day:f}")
    print(f"late_fee_stop_dpd {values.late_fee_stop_dpd}")
    print(f"write_off_dpd {values.write_off_dpd}")
    print(f"payoff_remaining_fees {values.payoff_remaining_fees}")
    for bucket, rate in values.provision_rates.items():
        print(f"provision_rate_{bucket.value} {rate:f}")


def _show_settings(args: argparse.Namespace) -> int:
    on = None if args.on is None else calendar.parse_date(args.on, field="on")
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        _print_settings(credit_settings.load_settings(conn, on))
    return 0


def _say_change(change: versions.SettingsChange) -> None:
    values = " ".join(f"{name}={value}" for name, value in sorted(change.settings.items()))
    print(f"change {change.id} from {change.effective_from} (recorded {change.recorded_at.isoformat()} "
          f"by {change.recorded_by}): {values}")


def _settings_history(args: argparse.Namespace) -> int:
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        for change in versions.history(conn, credit_settings.PRODUCT, limit=args.first):
            _say_change(change)
    return 0


def _set_settings(args: argparse.Namespace) -> int:
    effective_from = calendar.parse_date(args.effective_from, field="effectiveFrom")
    changes: dict[str, str] = {}
    for item in args.values:
        name, equals, value = item.partition("=")
        if not equals or name in changes:
            raise ValidationError(f"each setting is given once, as NAME=VALUE, got {item!r}", field="values")
        changes[name] = value
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        change = credit_settings.set_settings(conn, changes, effective_from, recorded_by="cli")
        _say_change(change)
        _print_settings(credit_settings.load_settings(conn, change.effective_from))
    return 0
