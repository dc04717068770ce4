"""Bank reconciliation: match the lines of a bank statement file to an account's ledger entries.

The file format is ledger/bank_file.py's. Matching, one to one:
1. reference: a posted entry of the account whose transaction carries the bank reference in its
   metadata (`bank_reference`) or as its idempotency key, with the same signed amount, whatever
   its date; the closest date wins when several do (bank lines in file order);
2. amount and date: the remaining lines and entries of each signed amount, paired where their
   dates lie within `window_days`: as many pairs as possible and, among those, the least total
   date distance (a least-cost matching per amount, ledger/assignment.py). Dates bound who may
   pair with whom, so an amount's lines and entries split into runs of dates no pair can cross;
   each run up to `assignment_size_max` a side is solved exactly, a larger one by the greedy
   pairing in date order, which still finds the most pairs (each line's candidates are a range
   of dates, moving on with the line) but may not find the least distance.
An entry matched by a run stays matched: later runs leave it out (ledger.reconciliation_matches).
Entries considered for rule 2 are the account's posted entries effective from the first bank
date minus the window to the last bank date plus the window; those left over and effective
within the statement's own dates are reported as unmatched (those in the margins belong to
neighbouring statements).

Totals: the bank total is the file's lines; the ledger total is the entries the run reports,
matched (whatever their date) and unmatched. A match pairs equal amounts, so
`difference = bank_total - ledger_total = sum(unmatched bank lines) - sum(unmatched entries)`.

A run is stored with its items (append-only). The same file (same bytes, by sha256) imported
again for the same account is recognized and answers with the stored run. A break (an item left
unmatched) is resolved once, with a reason and who resolved it (`resolve_break`), append-only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ledger import calendar
from ledger.accounts import Account, get_account
from ledger.assignment import least_cost_matching
from ledger.bank_file import (
    BankFileInvalid,
    BankLine,
    bank_lines_max,
    file_bytes_max,
    parse_bank_csv,
    read_bank_file,
    reference_length_max,
)
from ledger.database_transaction import database_transaction
from ledger.errors import LedgerError, ValidationError
from ledger.money import amount_max

__all__ = [
    "BankFileInvalid", "ReconciliationNotFound", "BankLine", "LedgerEntry", "ReconItem", "BreakResolution",
    "Reconciliation", "parse_bank_csv", "reconcile", "get_reconciliation", "resolve_break", "file_bytes_max",
    "bank_lines_max", "window_days_default", "window_days_max", "candidates_max", "reference_length_max",
    "assignment_size_max", "reason_length_max",
]

window_days_default = 3
window_days_max = 31
candidates_max = 200_000
assignment_size_max = 100     # lines or entries a side solved exactly (the cost grows as its cube)
file_name_length_max = 200
reason_length_max = 1000
resolved_by_length_max = 200


class ReconciliationNotFound(LedgerError):
    code = "RECONCILIATION_NOT_FOUND"


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
class BreakResolution:
    reason: str
    resolved_by: str
    resolved_at: datetime


@dataclass(frozen=True)
class ReconItem:
    status: str            # matched | bank | ledger
    rule: str | None       # reference | amount_date for a match
    line: BankLine | None
    entry: LedgerEntry | None
    note: str = ""
    item_no: int = 0       # its number in the stored run (0 before it is stored)
    resolution: BreakResolution | None = None


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
    encoding: str = "utf-8"  # the encoding the file was read in

    @property
    def difference(self) -> int:
        """Bank total minus ledger total: the unmatched bank lines' sum minus the unmatched entries'."""
        return self.bank_total - self.ledger_total

    @property
    def breaks(self) -> list[ReconItem]:
        """The items left unmatched, open or resolved: bank lines, then entries."""
        return self.unmatched_bank + self.unmatched_ledger


# Matching ----------------------------------------------------------------------------------------

_ENTRY_COLUMNS = """
select e.transaction_id, e.account_version,
       case when e.side = a.normal_side then e.amount else -e.amount end,
       e.effective_at, (e.effective_at at time zone %(zone)s)::date,
       coalesce(t.metadata ->> 'bank_reference', ''), t.idempotency_key
  from ledger.entries e
  join ledger.accounts a on a.id = e.account_id
  join ledger.transactions t on t.id = e.transaction_id
"""
# Entries a run may still match: posted, and not matched by an earlier run.
_UNMATCHED = """
 e.account_id = %(id)s and e.layer = 'posted'
   and not exists (select 1 from ledger.reconciliation_matches m
                    where m.account_id = e.account_id and m.account_version = e.account_version)
"""
_CANDIDATES_SQL = _ENTRY_COLUMNS + " where " + _UNMATCHED + """
   and e.effective_at >= (%(start)s::date)::timestamp at time zone %(zone)s
   and e.effective_at < (%(end)s::date + 1)::timestamp at time zone %(zone)s
 order by e.effective_at, e.account_version
 limit %(limit)s
"""
# Entries carrying one of the file's references, whatever their date (both lookups use an index).
_BY_REFERENCE_SQL = _ENTRY_COLUMNS + " where " + _UNMATCHED + """
   and e.transaction_id in (select x.id from ledger.transactions x where x.idempotency_key = any(%(refs)s)
                            union all
                            select x.id from ledger.transactions x
                             where x.metadata ? 'bank_reference' and x.metadata ->> 'bank_reference' = any(%(refs)s))
 order by e.effective_at, e.account_version
 limit %(limit)s
"""


def _candidates(conn: psycopg.Connection[Any], account: Account, start: date, end: date, zone: str,
                references: list[str]) -> tuple[list[LedgerEntry], list[LedgerEntry]]:
    """(entries effective within the dates, entries carrying one of `references`)."""
    params = {"id": account.id, "start": start, "end": end, "zone": zone, "refs": references,
              "limit": candidates_max + 1}
    try:
        with database_transaction(conn):
            rows = conn.execute(_CANDIDATES_SQL, params).fetchall()
            by_reference = conn.execute(_BY_REFERENCE_SQL, params).fetchall() if references else []
    except pg_errors.InvalidParameterValue:
        raise ValidationError(f"time zone {zone!r} is not known", field="timeZone") from None
    if len(rows) > candidates_max or len(by_reference) > candidates_max:
        raise ValidationError(f"more than {candidates_max:,} ledger entries fall in the statement's dates; "
                              "split the file", field="csv")
    return [LedgerEntry(*row) for row in rows], [LedgerEntry(*row) for row in by_reference]


def _days(line: BankLine, entry: LedgerEntry) -> int:
    return abs((entry.day - line.date).days)


def _by_reference(lines: list[BankLine], entries: list[LedgerEntry]) -> tuple[dict[int, int], dict[int, str]]:
    """Rule 1: {line index: entry index}, and notes for lines whose reference only had other amounts."""
    by_reference: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        for ref in {entry.reference, entry.idempotency_key} - {""}:
            by_reference.setdefault(ref, []).append(i)
    pairs: dict[int, int] = {}
    notes: dict[int, str] = {}
    taken: set[int] = set()
    for n, line in enumerate(lines):
        found = [i for i in by_reference.get(line.reference, []) if i not in taken] if line.reference else []
        same = [i for i in found if entries[i].amount == line.amount]
        if same:
            best = min(same, key=lambda i: (_days(line, entries[i]), i))
            taken.add(best)
            pairs[n] = best
        elif found:
            notes[n] = (f"reference found on transaction {entries[found[0]].transaction_id} "
                        f"with amount {entries[found[0]].amount}, not {line.amount}")
    return pairs, notes


def _runs_of_dates(lines: list[int], entries: list[int], line_day: Callable[[int], date],
                   entry_day: Callable[[int], date], window_days: int) -> list[tuple[list[int], list[int]]]:
    """Split one amount's lines and entries where the dates leave a gap wider than the window:
    no pair can cross it."""
    items = sorted([(line_day(n), 0, n) for n in lines] + [(entry_day(i), 1, i) for i in entries])
    runs: list[tuple[list[int], list[int]]] = []
    last: date | None = None
    for day, side, index in items:
        if last is None or (day - last).days > window_days:
            runs.append(([], []))
        runs[-1][side].append(index)
        last = day
    return runs


def _greedy_in_date_order(lines: list[BankLine], entries: list[LedgerEntry], run: tuple[list[int], list[int]],
                          window_days: int) -> dict[int, int]:
    """Each line in date order takes the earliest free entry it may: the most pairs there are."""
    line_ids = sorted(run[0], key=lambda n: (lines[n].date, n))
    entry_ids = sorted(run[1], key=lambda i: (entries[i].day, i))
    pairs: dict[int, int] = {}
    k = 0
    for n in line_ids:
        while k < len(entry_ids) and (lines[n].date - entries[entry_ids[k]].day).days > window_days:
            k += 1
        if k < len(entry_ids) and (entries[entry_ids[k]].day - lines[n].date).days <= window_days:
            pairs[n] = entry_ids[k]
            k += 1
    return pairs


def _by_amount_and_date(lines: list[BankLine], entries: list[LedgerEntry], free_lines: list[int],
                        free_entries: list[int], window_days: int) -> dict[int, int]:
    """Rule 2: {line index: entry index}, the most pairs at the least total date distance."""
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for n in free_lines:
        groups.setdefault(lines[n].amount, ([], []))[0].append(n)
    for i in free_entries:
        if entries[i].amount in groups:
            groups[entries[i].amount][1].append(i)
    pairs: dict[int, int] = {}
    for group_lines, group_entries in groups.values():
        for run in _runs_of_dates(group_lines, group_entries, lambda n: lines[n].date, lambda i: entries[i].day,
                                  window_days):
            run_lines, run_entries = run
            if not run_lines or not run_entries:
                continue
            if max(len(run_lines), len(run_entries)) > assignment_size_max:
                pairs.update(_greedy_in_date_order(lines, entries, run, window_days))
                continue
            cost = [[d if (d := _days(lines[n], entries[i])) <= window_days else None for i in run_entries]
                    for n in run_lines]
            pairs.update({run_lines[r]: run_entries[c] for r, c in least_cost_matching(cost)})
    return pairs


def _match(lines: list[BankLine], entries: list[LedgerEntry], window_days: int) -> tuple[
        list[ReconItem], list[ReconItem], set[int]]:
    """(matched, unmatched bank lines, indexes of matched entries): reference first, then amount and date."""
    pairs, notes = _by_reference(lines, entries)
    taken = set(pairs.values())
    rest = _by_amount_and_date(lines, entries, [n for n in range(len(lines)) if n not in pairs],
                               [i for i in range(len(entries)) if i not in taken], window_days)
    matched = [ReconItem("matched", "reference" if n in pairs else "amount_date", lines[n],
                         entries[pairs[n] if n in pairs else rest[n]])
               for n in sorted(set(pairs) | set(rest))]
    unmatched = [ReconItem("bank", None, line, None, notes.get(n, ""))
                 for n, line in enumerate(lines) if n not in pairs and n not in rest]
    return matched, unmatched, taken | set(rest.values())


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
    bank_file = read_bank_file(data, account.currency)
    lines = bank_file.lines
    start, end = min(line.date for line in lines), max(line.date for line in lines)
    with database_transaction(conn):
        # One run of an account at a time: a run sees every match the ones before it stored.
        conn.execute("select pg_advisory_xact_lock(hashtext('ledger.reconciliation_matches'), hashtext(%s))",
                     (str(account.id),))
        existing = _run_id_of(conn, account.id, sha)
        if existing is not None:
            return get_reconciliation(conn, existing, already_imported=True)
        margin = timedelta(days=window_days)
        references = sorted({line.reference for line in lines} - {""})
        near, referenced = _candidates(conn, account, start - margin, end + margin, time_zone, references)
        entries = list({e.account_version: e for e in near + referenced}.values())
        matched, unmatched_bank, taken = _match(lines, entries, window_days)
        unmatched_ledger = [ReconItem("ledger", None, None, e) for i, e in enumerate(entries)
                            if i not in taken and start <= e.day <= end]
        bank_total = sum(line.amount for line in lines)
        ledger_total = sum(i.entry.amount for i in matched + unmatched_ledger if i.entry is not None)
        run_id = _store(conn, account, sha, file_name, window_days, time_zone, bank_file.encoding, (start, end),
                        (bank_total, ledger_total), matched + unmatched_bank + unmatched_ledger, len(lines))
    return get_reconciliation(conn, run_id)


def _run_id_of(conn: psycopg.Connection[Any], account_id: int, sha: bytes) -> int | None:
    row = conn.execute("select id from ledger.reconciliation_runs where account_id = %s and file_sha256 = %s",
                       (account_id, sha)).fetchone()
    return None if row is None else int(row[0])


def _store(conn: psycopg.Connection[Any], account: Account, sha: bytes, file_name: str, window_days: int,
           time_zone: str, encoding: str, period: tuple[date, date], totals: tuple[int, int],
           items: list[ReconItem], lines: int) -> int:
    (start, end), (bank_total, ledger_total) = period, totals
    counts = {s: sum(1 for i in items if i.status == s) for s in ("matched", "bank", "ledger")}
    row = conn.execute(
        """insert into ledger.reconciliation_runs
               (account_id, file_sha256, file_name, window_days, time_zone, encoding, period_start, period_end,
                bank_lines, bank_total, ledger_total, matched, unmatched_bank, unmatched_ledger)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning id""",
        (account.id, sha, file_name, window_days, time_zone, encoding, start, end, lines, bank_total, ledger_total,
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
        cur.executemany(
            """insert into ledger.reconciliation_matches (account_id, account_version, run_id, item_no)
               values (%s, %s, %s, %s)""",
            [(account.id, item.entry.account_version, run_id, n)
             for n, item in enumerate(items, start=1) if item.status == "matched" and item.entry is not None])
    return run_id


_RUN_SQL = """
select r.id, a.code, a.currency, encode(r.file_sha256, 'hex'), r.window_days, r.period_start, r.period_end,
       r.bank_total, r.ledger_total, r.created_at, r.encoding
  from ledger.reconciliation_runs r join ledger.accounts a on a.id = r.account_id
 where r.id = %s
"""

_ITEMS_SQL = """
select i.status, i.rule, i.line_no, i.bank_date, i.reference, i.bank_amount, i.description,
       i.transaction_id, i.account_version, i.entry_amount, i.effective_at,
       (i.effective_at at time zone r.time_zone)::date, coalesce(t.metadata ->> 'bank_reference', ''),
       t.idempotency_key, i.note, i.item_no, x.reason, x.resolved_by, x.resolved_at
  from ledger.reconciliation_items i
  join ledger.reconciliation_runs r on r.id = i.run_id
  left join ledger.transactions t on t.id = i.transaction_id
  left join ledger.reconciliation_resolutions x on x.run_id = i.run_id and x.item_no = i.item_no
 where i.run_id = %s
 order by i.item_no
"""


def _check_id(value: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= amount_max:
        raise ValidationError(f"{field} must be a positive whole number, got {value!r}", field=field)


def get_reconciliation(conn: psycopg.Connection[Any], run_id: int, *, already_imported: bool = False) -> Reconciliation:
    """A stored run as it stands now: its matches, and its breaks with their resolutions."""
    _check_id(run_id, "id")
    run = conn.execute(_RUN_SQL, (run_id,)).fetchone()
    if run is None:
        raise ReconciliationNotFound(f"no reconciliation {run_id}", id=run_id)
    groups: dict[str, list[ReconItem]] = {"matched": [], "bank": [], "ledger": []}
    for (status, rule, line_no, day, reference, bank_amount, description, transaction_id, version, entry_amount,
         effective_at, entry_day, entry_reference, key, note, item_no, reason, resolved_by,
         resolved_at) in conn.execute(_ITEMS_SQL, (run_id,)):
        line = BankLine(line_no, day, reference, bank_amount, description) if line_no is not None else None
        entry = (LedgerEntry(transaction_id, version, entry_amount, effective_at, entry_day,
                             entry_reference, key) if transaction_id is not None else None)
        resolution = BreakResolution(reason, resolved_by, resolved_at) if reason is not None else None
        groups[status].append(ReconItem(status, rule, line, entry, note, item_no, resolution))
    return Reconciliation(run[0], run[1], run[2], run[3], run[4], run[5], run[6], int(run[7]), int(run[8]),
                          groups["matched"], groups["bank"], groups["ledger"], run[9], already_imported, run[10])


def resolve_break(conn: psycopg.Connection[Any], run_id: int, item_no: int, reason: str,
                  resolved_by: str) -> Reconciliation:
    """Record how a break of a run was resolved (once, append-only); the run as it stands after."""
    _check_id(run_id, "runId")
    _check_id(item_no, "itemId")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not 1 <= len(reason) <= reason_length_max:
        raise ValidationError(f"reason must say why, in 1 to {reason_length_max} characters", field="reason")
    if not 1 <= len(resolved_by) <= resolved_by_length_max:
        raise ValidationError(f"who resolves must be named in 1 to {resolved_by_length_max} characters",
                              field="resolvedBy")
    run = get_reconciliation(conn, run_id)
    item = next((i for i in run.matched + run.breaks if i.item_no == item_no), None)
    if item is None:
        raise ValidationError(f"reconciliation {run_id} has no item {item_no}", field="itemId")
    if item.status == "matched":
        raise ValidationError(f"item {item_no} of reconciliation {run_id} is a match, not a break", field="itemId")
    if item.resolution is not None:
        raise ValidationError(f"item {item_no} of reconciliation {run_id} was resolved already, by "
                              f"{item.resolution.resolved_by}: {item.resolution.reason}", field="itemId")
    try:
        with database_transaction(conn):
            conn.execute("""insert into ledger.reconciliation_resolutions (run_id, item_no, reason, resolved_by)
                            values (%s, %s, %s, %s)""", (run_id, item_no, reason, resolved_by))
    except pg_errors.UniqueViolation:
        raise ValidationError(f"item {item_no} of reconciliation {run_id} was resolved already",
                              field="itemId") from None
    return get_reconciliation(conn, run_id)
