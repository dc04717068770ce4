"""Commands for auditors and reconciliation scripts: journal, statement, checkpoint, reconcile.

`ledger-core verify --digest D` lives with verify in ledger_cli/core_commands.py.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from ledger import calendar
from ledger.accounts import get_accounts
from ledger.checkpoints import export_checkpoint, list_checkpoints, store_checkpoint
from ledger.errors import ValidationError
from ledger.feed import item_json, journal_page, page_size_max
from ledger.files import open_output, read_bounded
from ledger.reconcile import (
    Reconciliation,
    ReconItem,
    file_bytes_max,
    reconcile,
    resolve_break,
    window_days_default,
)
from ledger.statement_export import cut_statement, render, units
from ledger_cli.options import add_database_options, connection_url

follow_interval_s = 1.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "journal", help="print the journal from a cursor, one transaction per line (JSON Lines)",
        description="Transactions in feed order (never misses one); each line carries the cursor to resume after it.")
    add_database_options(parser)
    parser.add_argument("--after", default=None, help="resume after this cursor (default: from the start)")
    parser.add_argument("--format", choices=["jsonl"], default="jsonl")
    parser.add_argument("--page-size", type=int, default=500, help=f"transactions per query (at most {page_size_max})")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many transactions")
    parser.add_argument("--follow", action="store_true", help="keep waiting for new transactions (Ctrl-C stops)")
    parser.set_defaults(run=_journal)

    parser = subparsers.add_parser("statement", help="an account statement as CSV, JSON or PDF")
    add_database_options(parser)
    parser.add_argument("--account", required=True, help="account code")
    parser.add_argument("--from", dest="start", required=True,
                        help="start, ISO date (the start of that business day) or date-time with an offset")
    parser.add_argument("--to", dest="end", required=True, help="end (exclusive), ISO date or date-time")
    parser.add_argument("--known-at", default=None, help="reproduce the statement as known at this recorded time")
    parser.add_argument("--format", choices=["csv", "json", "pdf"], default="csv")
    parser.add_argument("--output", "-o", type=Path, default=None, help="file to write (default: stdout)")
    parser.set_defaults(run=_statement)

    parser = subparsers.add_parser("checkpoint", help="store a digest of every chain head and account (append-only)")
    add_database_options(parser)
    parser.add_argument("--note", default="", help="a note stored with the checkpoint")
    parser.add_argument("--list", action="store_true", help="list the latest checkpoints instead")
    parser.add_argument("--export", type=Path, default=None, metavar="FILE",
                        help="also write the checkpoint (digest, position, every account's line) to FILE as JSON, "
                             "to keep outside the database")
    parser.set_defaults(run=_checkpoint)

    parser = subparsers.add_parser("reconcile", help="match a bank statement CSV to an account's entries",
                                   description="Reconcile a file (--account, --file), or resolve a break of a run: "
                                               "`reconcile resolve --run N --item M --reason TEXT`.")
    add_database_options(parser)
    parser.add_argument("--account", help="account code (e.g. assets:reserves:icbc)")
    parser.add_argument("--file", type=Path, help="CSV with date,reference,amount[,description] (UTF-8 or GBK)")
    parser.add_argument("--window-days", type=int, default=window_days_default,
                        help=f"amount matches may differ in date by this many days (default {window_days_default})")
    parser.add_argument("--time-zone", default=None,
                        help="IANA zone of the bank's dates (default: the business time zone)")
    parser.add_argument("--json", action="store_true", help="print the run as JSON")
    parser.set_defaults(run=_reconcile)
    actions = parser.add_subparsers(dest="action")
    resolve = actions.add_parser("resolve", help="record how a break of a run was resolved (once, append-only)")
    add_database_options(resolve)
    resolve.add_argument("--run", dest="run_id", type=int, required=True, help="the reconciliation run's id")
    resolve.add_argument("--item", dest="item_no", type=int, required=True, help="the break's item number in the run")
    resolve.add_argument("--reason", required=True, help="why the break is settled")
    resolve.add_argument("--by", default=None, help="who resolves it (default: the operating-system user)")
    resolve.add_argument("--json", action="store_true", help="print the run as JSON")
    resolve.set_defaults(run=_resolve)


def _journal(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise ValidationError("--limit must be positive", field="limit")
    after, printed = args.after, 0
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        codes: dict[int, str] = {}
        while args.limit is None or printed < args.limit:
            first = min(args.page_size, args.limit - printed) if args.limit is not None else args.page_size
            page = journal_page(conn, after=after, first=first)
            missing = sorted({e.account_id for i in page.items for e in i.entries} - set(codes))
            if missing:
                codes.update({i: a.code for i, a in get_accounts(conn, missing).items()})
            for item in page.items:
                sys.stdout.write(json.dumps(item_json(item, codes), ensure_ascii=False, separators=(",", ":")) + "\n")
            printed += len(page.items)
            after = page.end_cursor
            if not page.has_next_page:
                if not args.follow:
                    break
                sys.stdout.flush()
                time.sleep(follow_interval_s)
    if after is not None:
        print(f"next: ledger-core journal --after {after}", file=sys.stderr)
    return 0


def _statement(args: argparse.Namespace) -> int:
    start, end = calendar.parse_instant(args.start, field="from"), calendar.parse_instant(args.end, field="to")
    known_at = calendar.parse_instant(args.known_at, field="knownAt") if args.known_at else None
    output = open_output(args.output, field="output") if args.output is not None else None
    with contextlib.ExitStack() as closing:
        if output is not None:
            closing.enter_context(output)
        with psycopg.connect(connection_url(args), autocommit=True) as conn:
            statement = cut_statement(conn, args.account, start, end, known_at=known_at)
        data = render(statement, args.format)
        if output is not None:
            output.write(data)
    if args.output is not None:
        print(f"wrote {args.output} ({len(statement.lines)} lines, known at {statement.known_at.isoformat()})",
              file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        if args.list:
            for c in list_checkpoints(conn):
                print(f"{c.id}\t{c.digest.taken_at.isoformat()}\t{c.digest.accounts}\t{c.digest.entries}\t"
                      f"{c.digest.digest}\t{c.note}")
            return 0
        # Opened first: an export that cannot be written stores no checkpoint.
        export = open_output(args.export, field="export") if args.export is not None else None
        with contextlib.ExitStack() as closing:
            if export is not None:
                closing.enter_context(export)
            checkpoint = store_checkpoint(conn, note=args.note)
            if export is not None:
                document = export_checkpoint(conn, checkpoint)
                export.write((json.dumps(document, indent=1) + "\n").encode("utf-8"))
    d = checkpoint.digest
    print(f"checkpoint {checkpoint.id}: {d.accounts:,} chain heads, {d.entries:,} entries", file=sys.stderr)
    print(d.digest)
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    for name in ("account", "file"):
        if getattr(args, name) is None:
            raise ValidationError(f"--{name} is required to reconcile a file", field=name)
    data = read_bounded(args.file, file_bytes_max, field="file")
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        run = reconcile(conn, args.account, data, file_name=args.file.name, window_days=args.window_days,
                        time_zone=args.time_zone)
    if args.json:
        print(json.dumps(run_json(run), ensure_ascii=False, indent=2))
    else:
        _print_run(run)
    return 0


def _resolve(args: argparse.Namespace) -> int:
    by = args.by if args.by is not None else f"user {getpass.getuser()}"
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        run = resolve_break(conn, args.run_id, args.item_no, args.reason, by)
    if args.json:
        print(json.dumps(run_json(run), ensure_ascii=False, indent=2))
    else:
        _print_run(run)
    return 0


def run_json(run: Reconciliation) -> dict[str, Any]:
    def item(i: Any) -> dict[str, Any]:
        return {
            "item": i.item_no, "status": i.status, "rule": i.rule, "note": i.note,
            "resolution": None if i.resolution is None else {
                "reason": i.resolution.reason, "resolvedBy": i.resolution.resolved_by,
                "resolvedAt": i.resolution.resolved_at.isoformat()},
            "bankLine": None if i.line is None else {
                "line": i.line.line_no, "date": i.line.date.isoformat(), "reference": i.line.reference,
                "amountMinor": str(i.line.amount), "description": i.line.description},
            "entry": None if i.entry is None else {
                "transactionId": i.entry.transaction_id, "accountVersion": i.entry.account_version,
                "amountMinor": str(i.entry.amount), "effectiveAt": i.entry.effective_at.isoformat()},
        }
    return {
        "id": run.id, "account": run.account_code, "currency": run.currency, "fileSha256": run.file_sha256,
        "alreadyImported": run.already_imported, "windowDays": run.window_days, "encoding": run.encoding,
        "periodStart": run.period_start.isoformat(), "periodEnd": run.period_end.isoformat(),
        "bankTotalMinor": str(run.bank_total), "ledgerTotalMinor": str(run.ledger_total),
        "differenceMinor": str(run.difference),
        "matched": [item(i) for i in run.matched], "unmatchedBank": [item(i) for i in run.unmatched_bank],
        "unmatchedLedger": [item(i) for i in run.unmatched_ledger],
    }


def _resolved(item: ReconItem) -> str:
    r = item.resolution
    return "" if r is None else f"; resolved by {r.resolved_by} at {r.resolved_at.isoformat()}: {r.reason}"


def _print_run(run: Reconciliation) -> None:
    c = run.currency
    seen = " (this file was imported before: the stored run)" if run.already_imported else ""
    print(f"reconciliation {run.id}{seen}: {run.account_code}, {run.period_start} to {run.period_end} "
          f"(file read as {run.encoding})")
    for i in run.matched:
        assert i.line is not None and i.entry is not None
        print(f"  matched ({i.rule}) line {i.line.line_no} {i.line.date} {i.line.reference!r} "
              f"{units(i.line.amount, c)} = transaction {i.entry.transaction_id}")
    for i in run.unmatched_bank:
        assert i.line is not None
        note = f" ({i.note})" if i.note else ""
        print(f"  break {i.item_no}: unmatched bank line {i.line.line_no} {i.line.date} {i.line.reference!r} "
              f"{units(i.line.amount, c)}{note}{_resolved(i)}")
    for i in run.unmatched_ledger:
        assert i.entry is not None
        print(f"  break {i.item_no}: unmatched ledger entry: transaction {i.entry.transaction_id} {i.entry.day} "
              f"{units(i.entry.amount, c)}{_resolved(i)}")
    print(f"bank total {units(run.bank_total, c)} {c}, ledger total {units(run.ledger_total, c)} {c}, "
          f"difference {units(run.difference, c)} {c}; matched {len(run.matched)}, "
          f"unmatched bank {len(run.unmatched_bank)}, unmatched ledger {len(run.unmatched_ledger)}")
