"""Bank reconciliation: match the lines of a bank statement file to an account's ledger entries.

The file (CSV, UTF-8, a byte-order mark is allowed; at most `file_bytes_max` bytes and
`bank_lines_max` lines) has a header row naming its columns, in any order:

    date,reference,amount[,description]

- date: the bank's booking date, ISO `YYYY-MM-DD`, a day in `time_zone` (default: the business
  time zone of ledger/calendar.py);
- reference: the bank's reference for the line (may be empty);
- amount: signed, in currency units with at most the currency's decimals (`1234.56`, `-20`);
  positive when the account's balance goes up (money into a bank reserve account). A column
  `amount_minor` (integer minor units) may be given instead of `amount`.

Matching, one to one, bank lines in file order:
1. reference: a posted entry of the account whose transaction carries the bank reference in its
   metadata (`bank_reference`) or as its idempotency key, with the same signed amount;
2. amount and date: an unmatched entry with the same signed amount whose effective date lies
   within `window_days` of the bank date; the closest date wins, then the oldest entry.
Entries considered are the account's posted entries effective from the first bank date minus
the window to the last bank date plus the window; those left over and effective within the
statement's own dates are reported as unmatched (those in the margins belong to neighbouring
statements). Totals compare the bank lines with the entries effective within those dates.

A run is stored with its items (append-only). The same file (same bytes, by sha256) imported
again for the same account is recognized and answers with the stored run.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ledger import calendar
from ledger.accounts import Account, get_account
from ledger.errors import LedgerError, ValidationError
from ledger.instants import instant_max, instant_min
from ledger.money import amount_max, minor_digits

__all__ = [
    "BankFileInvalid", "ReconciliationNotFound", "BankLine", "LedgerEntry", "ReconItem", "Reconciliation",
    "parse_bank_csv", "reconcile", "get_reconciliation", "file_bytes_max", "bank_lines_max",
    "window_days_default", "window_days_max", "candidates_max", "reference_length_max",
]

file_bytes_max = 10 * 1024 * 1024
bank_lines_max = 50_000
window_days_default = 3
window_days_max = 31
candidates_max = 200_000
reference_length_max = 200
description_length_max = 1000
file_name_length_max = 200

_AMOUNT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_MINOR = re.compile(r"-?[0-9]{1,19}")  # longer does not fit in 64 bits (nor may int() take it)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_COLUMNS_HELP = "date, reference, amount (or amount_minor) and optionally description"


class BankFileInvalid(LedgerError):
    """The bank statement file cannot be read; `line` is its 1-based line number (0: the file)."""

    code = "BANK_FILE_INVALID"

    def __init__(self, message: str, *, line: int) -> None:
        super().__init__(f"line {line}: {message}" if line else message, line=line)
        self.line = line


class ReconciliationNotFound(LedgerError):
    code = "RECONCILIATION_NOT_FOUND"


@dataclass(frozen=True)
class BankLine:
    line_no: int
    date: date
    reference: str
    amount: int            # signed minor units
    description: str


@dataclass(frozen=True)
class LedgerEntry:
    transaction_id: int
    account_version: int
    amount: int            # signed on the account's normal side, minor units
    effective_at: datetime
    day: date              # effective date in the run's time zone
    reference: str         # metadata.bank_reference, or ''
    idempotency_key: str


@dataclass(frozen=True)
class ReconItem:
    status: str            # matched | bank | ledger
    rule: str | None       # reference | amount_date for a match
    line: BankLine | None
    entry: LedgerEntry | None
    note: str = ""


@dataclass(frozen=True)
class Reconciliation:
    id: int
    account_code: str
    currency: str
    file_sha256: str
    window_days: int
    period_start: date
    period_end: date
    bank_total: int
    ledger_total: int
    matched: list[ReconItem]
    unmatched_bank: list[ReconItem]
    unmatched_ledger: list[ReconItem]
    created_at: datetime
    already_imported: bool   # this file was imported before; the stored run answers

    @property
    def difference(self) -> int:
        """Bank total minus ledger total over the statement's dates."""
        return self.bank_total - self.ledger_total


# Parsing -----------------------------------------------------------------------------------------

def _text(data: bytes) -> str:
    if len(data) > file_bytes_max:
        raise BankFileInvalid(f"the file has {len(data):,} bytes; at most {file_bytes_max:,} are accepted", line=0)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise BankFileInvalid(f"not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8", line=line) from None


def _header(row: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in row]
    unknown = [n for n in names if n not in ("date", "reference", "amount", "amount_minor", "description")]
    if unknown or len(set(names)) != len(names):
        raise BankFileInvalid(f"columns {row!r}: expected {_COLUMNS_HELP}, each once", line=1)
    if "date" not in names or "reference" not in names or ("amount" in names) == ("amount_minor" in names):
        raise BankFileInvalid(f"columns {row!r}: expected {_COLUMNS_HELP}", line=1)
    return {name: i for i, name in enumerate(names)}


def _amount(value: str, columns: dict[str, int], currency: str, line: int) -> int:
    value = value.strip()
    if "amount_minor" in columns:
        if not _MINOR.fullmatch(value):
            raise BankFileInvalid(f"amount_minor {value!r} is not a whole number of minor units", line=line)
        amount = int(value)
    else:
        digits = minor_digits(currency)
        if not _AMOUNT.fullmatch(value):
            raise BankFileInvalid(f"amount {value!r} is not a number like 1234.56 or -20 "
                                  "(no thousands separators or currency signs)", line=line)
        if "." in value and len(value.split(".")[1]) > digits:
            raise BankFileInvalid(f"amount {value!r} has more than {digits} decimals for {currency}", line=line)
        amount = int(Decimal(value).scaleb(digits))
    if amount == 0 or abs(amount) > amount_max:
        raise BankFileInvalid(f"amount {value!r} must be non-zero and fit in 64 bits", line=line)
    return amount


def _line(row: list[str], columns: dict[str, int], currency: str, line: int) -> BankLine:
    if len(row) != len(columns):
        raise BankFileInvalid(f"expected {len(columns)} fields ({', '.join(columns)}), got {len(row)}", line=line)
    day = row[columns["date"]].strip()
    try:
        parsed = date.fromisoformat(day) if _DATE.fullmatch(day) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise BankFileInvalid(f"date {day!r} is not an ISO date YYYY-MM-DD", line=line)
    if not instant_min.date() <= parsed < instant_max.date():  # the days around it must be instants too
        raise BankFileInvalid(f"date {day} lies outside {instant_min.date()} to {instant_max.date()}", line=line)
    reference = row[columns["reference"]].strip()
    if len(reference) > reference_length_max:
        raise BankFileInvalid(f"reference is longer than {reference_length_max} characters", line=line)
    description = row[columns["description"]].strip() if "description" in columns else ""
    if len(description) > description_length_max:
        raise BankFileInvalid(f"description is longer than {description_length_max} characters", line=line)
    amount = _amount(row[columns.get("amount", columns.get("amount_minor", 0))], columns, currency, line)
    return BankLine(line, parsed, reference, amount, description)


def parse_bank_csv(data: bytes, currency: str) -> list[BankLine]:
    """The lines of a bank statement file; BankFileInvalid names the first bad line."""
    reader = csv.reader(_text(data).splitlines())
    lines: list[BankLine] = []
    columns: dict[str, int] | None = None
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if columns is None:
                columns = _header(row)
                continue
            if len(lines) >= bank_lines_max:
                raise BankFileInvalid(f"more than {bank_lines_max:,} lines; split the file", line=reader.line_num)
            lines.append(_line(row, columns, currency, reader.line_num))
    except csv.Error as exc:
        raise BankFileInvalid(f"not valid CSV: {exc}", line=reader.line_num) from None
    if columns is None:
        raise BankFileInvalid(f"the file is empty; expected a header row with {_COLUMNS_HELP}", line=0)
    if not lines:
        raise BankFileInvalid("the file has a header but no lines", line=0)
    return lines


# Matching ----------------------------------------------------------------------------------------

_CANDIDATES_SQL = """
select e.transaction_id, e.account_version,
       case when e.side = a.normal_side then e.amount else -e.amount end,
       e.effective_at, (e.effective_at at time zone %(zone)s)::date,
       coalesce(t.metadata ->> 'bank_reference', ''), t.idempotency_key
  from ledger.entries e
  join ledger.accounts a on a.id = e.account_id
  join ledger.transactions t on t.id = e.transaction_id
 where e.account_id = %(id)s and e.layer = 'posted'
   and e.effective_at >= (%(start)s::date)::timestamp at time zone %(zone)s
   and e.effective_at < (%(end)s::date + 1)::timestamp at time zone %(zone)s
 order by e.effective_at, e.account_version
 limit %(limit)s
"""


def _candidates(conn: psycopg.Connection[Any], account: Account, start: date, end: date, zone: str) -> list[LedgerEntry]:
    try:
        with conn.transaction():
            rows = conn.execute(_CANDIDATES_SQL, {"id": account.id, "start": start, "end": end, "zone": zone,
                                                  "limit": candidates_max + 1}).fetchall()
    except pg_errors.InvalidParameterValue:
        raise ValidationError(f"time zone {zone!r} is not known", field="timeZone") from None
    if len(rows) > candidates_max:
        raise ValidationError(f"more than {candidates_max:,} ledger entries fall in the statement's dates; "
                              "split the file", field="csv")
    return [LedgerEntry(*row) for row in rows]


def _match(lines: list[BankLine], entries: list[LedgerEntry], window_days: int) -> tuple[
        list[ReconItem], list[ReconItem], set[int]]:
    """(matched, unmatched bank lines, indexes of matched entries): reference first, then amount and date."""
    taken: set[int] = set()
    pairs: dict[int, ReconItem] = {}
    notes: dict[int, str] = {}
    by_reference: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        for ref in {entry.reference, entry.idempotency_key} - {""}:
            by_reference.setdefault(ref, []).append(i)
    for n, line in enumerate(lines):
        found = [i for i in by_reference.get(line.reference, []) if i not in taken] if line.reference else []
        same = [i for i in found if entries[i].amount == line.amount]
        if same:
            best = min(same, key=lambda i: (abs((entries[i].day - line.date).days), i))
            taken.add(best)
            pairs[n] = ReconItem("matched", "reference", line, entries[best])
        elif found:
            notes[n] = (f"reference found on transaction {entries[found[0]].transaction_id} "
                        f"with amount {entries[found[0]].amount}, not {line.amount}")
    by_amount: dict[int, list[int]] = {}
    for i, entry in enumerate(entries):
        by_amount.setdefault(entry.amount, []).append(i)
    for n, line in enumerate(lines):
        if n in pairs:
            continue
        near = [i for i in by_amount.get(line.amount, [])
                if i not in taken and abs((entries[i].day - line.date).days) <= window_days]
        if near:
            best = min(near, key=lambda i: (abs((entries[i].day - line.date).days), i))
            taken.add(best)
            pairs[n] = ReconItem("matched", "amount_date", line, entries[best])
    matched = [pairs[n] for n in sorted(pairs)]
    unmatched = [ReconItem("bank", None, line, None, notes.get(n, "")) for n, line in enumerate(lines) if n not in pairs]
    return matched, unmatched, taken


def reconcile(conn: psycopg.Connection[Any], account_code: str, data: bytes, *, file_name: str = "",
              window_days: int = window_days_default, time_zone: str | None = None) -> Reconciliation:
    """Reconcile a bank statement file against an account; the run is stored. The same file
    again for the same account returns the stored run (already_imported=True). The bank's dates
    are days in `time_zone` (an IANA name; by default the business time zone)."""
    time_zone = calendar.business_time_zone().key if time_zone is None else calendar.time_zone(time_zone).key
    if isinstance(window_days, bool) or not isinstance(window_days, int) or not 0 <= window_days <= window_days_max:
        raise ValidationError(f"windowDays must be between 0 and {window_days_max}", field="windowDays")
    if not isinstance(data, bytes):
        raise ValidationError("the bank statement must be bytes", field="csv")
    file_name = file_name[-file_name_length_max:]
    account = get_account(conn, account_code)
    sha = hashlib.sha256(data).digest()
    existing = _run_id_of(conn, account.id, sha)
    if existing is not None:
        return get_reconciliation(conn, existing, already_imported=True)
    lines = parse_bank_csv(data, account.currency)
    start, end = min(line.date for line in lines), max(line.date for line in lines)
    margin = timedelta(days=window_days)
    entries = _candidates(conn, account, start - margin, end + margin, time_zone)
    matched, unmatched_bank, taken = _match(lines, entries, window_days)
    unmatched_ledger = [ReconItem("ledger", None, None, e) for i, e in enumerate(entries)
                        if i not in taken and start <= e.day <= end]
    bank_total = sum(line.amount for line in lines)
    ledger_total = sum(e.amount for e in entries if start <= e.day <= end)
    try:
        run_id = _store(conn, account, sha, file_name, window_days, time_zone, (start, end), (bank_total, ledger_total),
                        matched + unmatched_bank + unmatched_ledger, len(lines))
    except pg_errors.UniqueViolation:
        # The same file was imported concurrently: that run answers.
        concurrent = _run_id_of(conn, account.id, sha)
        assert concurrent is not None
        return get_reconciliation(conn, concurrent, already_imported=True)
    return get_reconciliation(conn, run_id)


def _run_id_of(conn: psycopg.Connection[Any], account_id: int, sha: bytes) -> int | None:
    row = conn.execute("select id from ledger.reconciliation_runs where account_id = %s and file_sha256 = %s",
                       (account_id, sha)).fetchone()
    return None if row is None else int(row[0])


def _store(conn: psycopg.Connection[Any], account: Account, sha: bytes, file_name: str, window_days: int,
           time_zone: str, period: tuple[date, date], totals: tuple[int, int], items: list[ReconItem],
           lines: int) -> int:
    (start, end), (bank_total, ledger_total) = period, totals
    counts = {s: sum(1 for i in items if i.status == s) for s in ("matched", "bank", "ledger")}
    with conn.transaction():
        row = conn.execute(
            """insert into ledger.reconciliation_runs
                   (account_id, file_sha256, file_name, window_days, time_zone, period_start, period_end,
                    bank_lines, bank_total, ledger_total, matched, unmatched_bank, unmatched_ledger)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning id""",
            (account.id, sha, file_name, window_days, time_zone, start, end, lines, bank_total, ledger_total,
             counts["matched"], counts["bank"], counts["ledger"])).fetchone()
        assert row is not None
        run_id = int(row[0])
        with conn.cursor() as cur:
            cur.executemany(
                """insert into ledger.reconciliation_items
                       (run_id, item_no, status, rule, line_no, bank_date, reference, bank_amount, description,
                        account_version, transaction_id, entry_amount, effective_at, note)
                   values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                [(run_id, n, item.status, item.rule,
                  item.line.line_no if item.line else None, item.line.date if item.line else None,
                  item.line.reference if item.line else None, item.line.amount if item.line else None,
                  item.line.description if item.line else None,
                  item.entry.account_version if item.entry else None,
                  item.entry.transaction_id if item.entry else None,
                  item.entry.amount if item.entry else None, item.entry.effective_at if item.entry else None,
                  item.note)
                 for n, item in enumerate(items, start=1)])
    return run_id


_RUN_SQL = """
select r.id, a.code, a.currency, encode(r.file_sha256, 'hex'), r.window_days, r.period_start, r.period_end,
       r.bank_total, r.ledger_total, r.created_at
  from ledger.reconciliation_runs r join ledger.accounts a on a.id = r.account_id
 where r.id = %s
"""

_ITEMS_SQL = """
select i.status, i.rule, i.line_no, i.bank_date, i.reference, i.bank_amount, i.description,
       i.transaction_id, i.account_version, i.entry_amount, i.effective_at,
       (i.effective_at at time zone r.time_zone)::date, coalesce(t.metadata ->> 'bank_reference', ''), t.idempotency_key, i.note
  from ledger.reconciliation_items i
  join ledger.reconciliation_runs r on r.id = i.run_id
  left join ledger.transactions t on t.id = i.transaction_id
 where i.run_id = %s
 order by i.item_no
"""


def get_reconciliation(conn: psycopg.Connection[Any], run_id: int, *, already_imported: bool = False) -> Reconciliation:
    if isinstance(run_id, bool) or not isinstance(run_id, int) or not 1 <= run_id <= amount_max:
        raise ValidationError(f"id must be a reconciliation id, got {run_id!r}", field="id")
    run = conn.execute(_RUN_SQL, (run_id,)).fetchone()
    if run is None:
        raise ReconciliationNotFound(f"no reconciliation {run_id}", id=run_id)
    groups: dict[str, list[ReconItem]] = {"matched": [], "bank": [], "ledger": []}
    for (status, rule, line_no, day, reference, bank_amount, description, transaction_id, version, entry_amount,
         effective_at, entry_day, entry_reference, key, note) in conn.execute(_ITEMS_SQL, (run_id,)):
        line = BankLine(line_no, day, reference, bank_amount, description) if line_no is not None else None
        entry = (LedgerEntry(transaction_id, version, entry_amount, effective_at, entry_day,
                             entry_reference, key) if transaction_id is not None else None)
        groups[status].append(ReconItem(status, rule, line, entry, note))
    return Reconciliation(run[0], run[1], run[2], run[3], run[4], run[5], run[6], int(run[7]), int(run[8]),
                          groups["matched"], groups["bank"], groups["ledger"], run[9], already_imported)
