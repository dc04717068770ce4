"""Statements out: a whole statement cut at a journal position, written as CSV, JSON or PDF.

The figures come from ledger.statements (the same functions the GraphQL statement uses), so a
statement exported here and one read over GraphQL with the same `knownAt` are identical.

A statement is cut at `known_at` (a recorded time) and records it with the journal position of
the cut (ledger/statement_cut.py). Without an explicit `known_at` the cut is
`ledger.journal_horizon()`: a time no transaction still in flight can record at, so cutting the
same statement again later with that `known_at` gives the same bytes; a later `known_at` is
refused. Postings recorded after
the cut but effective before the period's end (backdated) are listed as later changes, with
the figures the statement would show if cut now.

CSV (RFC 4180, UTF-8 with a byte-order mark so spreadsheets read non-ASCII text, CRLF): one
header row, then an `opening` row, one `entry` row per posted entry, a `closing` row and a
`totals` row. Dates are ISO 8601 (a date column for spreadsheets, the business date of
ledger/calendar.py, and the full UTC timestamp);
amounts in currency units ("1234.56") with the same figure in minor units alongside.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from ledger import calendar
from ledger import statements as _statements
from ledger.accounts import Account, get_account
from ledger.errors import ValidationError
from ledger.journal import get_transactions
from ledger.money import minor_digits
from ledger.statement_cut import cut_position, final_cut, one_snapshot
from ledger.statements import StatementLine, statement_page, statement_totals

__all__ = [
    "LaterChange", "Statement", "cut_statement", "to_csv", "to_json",
    "to_pdf", "to_json_bytes", "render", "units", "statement_lines_max", "later_changes_max", "CSV_COLUMNS",
]

statement_lines_max = 100_000   # a longer period is cut into several statements
later_changes_max = 1_000

CSV_COLUMNS = [
    "account", "currency", "line", "effective_date", "effective_at", "recorded_at", "transaction_id",
    "account_version", "kind", "description", "debit", "credit", "debit_minor", "credit_minor",
    "balance", "balance_minor", "known_at",
]


@dataclass(frozen=True)
class LaterChange:
    """A posted entry recorded after the cut that changes the statement if cut again now."""

    transaction_id: int
    account_version: int
    side: str
    amount: int
    signed: int            # on the account's normal side
    effective_at: datetime
    recorded_at: datetime
    affects: str           # "opening" (effective before the period) or "period"


@dataclass(frozen=True)
class Statement:
    account: Account
    start: datetime
    end: datetime
    known_at: datetime
    position: int          # the cut's journal position (statement_cut.cut_position)
    opening: int
    closing: int
    total_debits: int
    total_credits: int
    lines: list[StatementLine]
    kinds: dict[int, tuple[str, str]]          # transaction id -> (kind, description)
    later_changes: list[LaterChange]
    closing_now: int       # the closing balance if the statement were cut now


def cut_statement(conn: psycopg.Connection[Any], code: str, start: datetime, end: datetime, *,
                  known_at: datetime | None = None, with_lines: bool = True) -> Statement:
    """The whole statement of an account for [start, end) as known at `known_at` (default: the
    journal horizon; a later one is refused, KnownAtNotFinal), without its lines when only the
    figures and the later changes are wanted.

    The cut is taken first, then every page, the totals and the later changes are read in one
    repeatable-read snapshot taken after it (inside a caller's transaction, the caller's).
    """
    known = final_cut(conn, known_at)
    with one_snapshot(conn):
        return _cut(conn, code, start, end, known, with_lines)


def _cut(conn: psycopg.Connection[Any], code: str, start: datetime, end: datetime, known_at: datetime,
         with_lines: bool) -> Statement:
    account = get_account(conn, code)
    lines: list[StatementLine] = []
    after = None
    while with_lines:
        page = statement_page(conn, account.id, account.currency, start, end, first=_statements.page_size_max,
                              after=after, known_at=known_at)
        lines.extend(page.lines)
        if len(lines) > statement_lines_max:
            raise ValidationError(f"the period holds more than {statement_lines_max} entries; "
                                  "cut it into shorter periods", field="to")
        if not page.has_next_page:
            break
        after = page.lines[-1].cursor
    totals = statement_totals(conn, account.id, start, end, known_at)
    later = _later_changes(conn, account, start, end, known_at)
    closing_now = totals.closing + sum(c.signed for c in later)
    transactions = get_transactions(conn, sorted({line.transaction_id for line in lines}))
    kinds = {i: (t.kind, t.description) for i, t in transactions.items()}
    return Statement(account, start, end, known_at, cut_position(conn, account.id, known_at), totals.opening,
                     totals.closing, totals.total_debits, totals.total_credits, lines, kinds, later, closing_now)


_LATER_SQL = """
select e.transaction_id, e.account_version, e.side, e.amount,
       case when e.side = a.normal_side then e.amount else -e.amount end,
       e.effective_at, e.recorded_at
  from ledger.entries e join ledger.accounts a on a.id = e.account_id
 where e.account_id = %(id)s and e.layer = 'posted' and e.effective_at < %(end)s
   -- recorded_at rises with the version: what was recorded after the cut is every version
   -- after the last one recorded by it
   and e.account_version > ledger.version_known_at(%(id)s, %(known_at)s)
 order by e.account_version
 limit %(limit)s
"""


def _later_changes(conn: psycopg.Connection[Any], account: Account, start: datetime, end: datetime,
                   known_at: datetime) -> list[LaterChange]:
    rows = conn.execute(_LATER_SQL, {"id": account.id, "known_at": known_at, "end": end,
                                     "limit": later_changes_max + 1}).fetchall()
    if len(rows) > later_changes_max:
        raise ValidationError(f"more than {later_changes_max} postings were recorded after {known_at.isoformat()} "
                              "into this period; cut the statement again at a later knownAt", field="knownAt")
    return [LaterChange(r[0], r[1], r[2], r[3], r[4], r[5], r[6], "opening" if r[5] < start else "period")
            for r in rows]


def units(amount_minor: int, currency: str) -> str:
    """Minor units as a plain decimal of currency units: 123456 CNY -> "1234.56"; exact."""
    digits = minor_digits(currency)
    return f"{Decimal(amount_minor).scaleb(-digits):.{digits}f}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _cell(text: str) -> str:
    # A spreadsheet runs a cell starting with = + - @ as a formula; free text must stay text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(statement: Statement) -> bytes:
    s, currency = statement, statement.account.currency
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    common = [s.account.code, currency]
    known = _iso(s.known_at)

    def balance_row(line: str, at: datetime, amount: int) -> list[str]:
        return common + [line, calendar.business_date(at).isoformat(), _iso(at), "", "", "", "", "", "", "", "", "",
                         units(amount, currency), str(amount), known]

    writer.writerow(balance_row("opening", s.start, s.opening))
    for line in s.lines:
        kind, description = s.kinds.get(line.transaction_id, ("", ""))
        debit = line.amount if line.side == "debit" else 0
        credit = line.amount if line.side == "credit" else 0
        writer.writerow(common + [
            "entry", calendar.business_date(line.effective_at).isoformat(), _iso(line.effective_at),
            _iso(line.recorded_at), str(line.transaction_id), str(line.account_version), kind, _cell(description),
            units(debit, currency) if debit else "", units(credit, currency) if credit else "",
            str(debit) if debit else "", str(credit) if credit else "",
            units(line.running_balance, currency), str(line.running_balance), known])
    writer.writerow(balance_row("closing", s.end, s.closing))
    writer.writerow(common + ["totals", s.end.date().isoformat(), _iso(s.end), "", "", "", "", "",
                              units(s.total_debits, currency), units(s.total_credits, currency),
                              str(s.total_debits), str(s.total_credits), "", "", known])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_json(statement: Statement) -> dict[str, Any]:
    """The statement as JSON: minor units as strings (64-bit safe), with currency units beside."""
    s, currency = statement, statement.account.currency

    def money(amount: int) -> dict[str, str]:
        return {"minor": str(amount), "units": units(amount, currency), "currency": currency}

    return {
        "account": s.account.code,
        "currency": currency,
        "from": _iso(s.start),
        "to": _iso(s.end),
        "knownAt": _iso(s.known_at),
        "journalPosition": str(s.position),
        "opening": money(s.opening),
        "closing": money(s.closing),
        "totalDebits": money(s.total_debits),
        "totalCredits": money(s.total_credits),
        "lines": [
            {"transactionId": line.transaction_id, "accountVersion": line.account_version,
             "kind": s.kinds.get(line.transaction_id, ("", ""))[0],
             "description": s.kinds.get(line.transaction_id, ("", ""))[1],
             "side": line.side, "amount": money(line.amount), "effectiveAt": _iso(line.effective_at),
             "recordedAt": _iso(line.recorded_at), "runningBalance": money(line.running_balance)}
            for line in s.lines
        ],
        "laterChanges": [
            {"transactionId": c.transaction_id, "accountVersion": c.account_version, "side": c.side,
             "amount": money(c.amount), "effectiveAt": _iso(c.effective_at), "recordedAt": _iso(c.recorded_at),
             "affects": c.affects}
            for c in s.later_changes
        ],
        "closingNow": money(s.closing_now),
    }


def to_json_bytes(statement: Statement) -> bytes:
    return (json.dumps(to_json(statement), ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def to_pdf(statement: Statement) -> bytes:
    """The statement as a PDF (ledger/statement_pdf.py; fpdf2 is loaded only when one is made)."""
    from ledger.statement_pdf import statement_pdf

    return statement_pdf(statement)


def render(statement: Statement, fmt: str) -> bytes:
    if fmt == "csv":
        return to_csv(statement)
    if fmt == "json":
        return to_json_bytes(statement)
    if fmt == "pdf":
        return to_pdf(statement)
    raise ValidationError(f"format must be csv, json or pdf, got {fmt!r}", field="format")
