"""Reconciliation of a bank file as banks write them (200 lines, BOM, CRLF or GBK, bank number
formats, duplicates, late bookings, references): every valid pair found, the totals equal to the
breaks, matches that hold across runs, breaks resolved, bad files refused at the right line."""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.assignment import least_cost_matching
from ledger.bank_file import BankFileInvalid, read_bank_file
from ledger.errors import ValidationError
from ledger.posting import Leg, Transfer, post
from ledger.reconcile import get_reconciliation, reconcile, resolve_break
from ledger_cli.main import main

BANK = "assets:reserves:icbc"
WALLET = "liabilities:wallets:u1"
OCT = date(2026, 10, 1)
TRAP_AMOUNT = 8_800
TRAPS = (1, 9, 17, 25)


@dataclass(frozen=True)
class Row:
    day: date
    reference: str
    amount: int
    description: str
    key: str | None          # the transaction it should match; None for a bank-only line


def _text(amount: int, style: int) -> str:
    """Minor units as a bank writes currency units, in one of several styles."""
    units = f"{abs(amount) // 100:,}.{abs(amount) % 100:02d}"
    plain = units.replace(",", "")
    if amount < 0:
        return (f"({units})", f"-{plain}", f"-{units}")[style % 3]
    return (units, f"+{plain}", plain)[style % 3]


def _fixture() -> tuple[list[Row], list[tuple[str, int, date, str | None]]]:
    """(file rows in file order, ledger postings (key, amount, effective day, bank reference))."""
    rng = random.Random(7)
    rows: list[Row] = []
    ledger: list[tuple[str, int, date, str | None]] = []
    for n in range(151):                      # amount and date, the bank books 0 to 3 days later
        amount = (n + 1) * 1_013 * (-1 if n % 4 == 0 else 1)
        day = OCT + timedelta(days=n % 28)
        ledger.append((f"p{n}", amount, day, None))
        rows.append(Row(day + timedelta(days=rng.randint(0, 3)), "", amount, f"收款 {n}", f"p{n}"))
    for t in TRAPS:                           # file order defeats greedy pairing: t+3 first, then t
        ledger += [(f"trap{t}a", TRAP_AMOUNT, OCT + timedelta(days=t), None),
                   (f"trap{t}b", TRAP_AMOUNT, OCT + timedelta(days=t + 4), None)]
        rows += [Row(OCT + timedelta(days=t + 2), "", TRAP_AMOUNT, "trap", f"trap{t}b"),
                 Row(OCT + timedelta(days=t - 1), "", TRAP_AMOUNT, "trap", f"trap{t}a")]
    for k, entries in (("dup1", 2), ("dup2", 2), ("dup3", 1)):   # the same line twice
        day = OCT + timedelta(days=10 + len(k) + int(k[-1]))
        amount = 77_700 + int(k[-1])
        ledger += [(f"{k}-{i}", amount, day, None) for i in range(entries)]
        rows += [Row(day, "", amount, "duplicate", f"{k}-0"), Row(day, "", amount, "duplicate",
                                                                 f"{k}-1" if entries == 2 else None)]
    for n in range(15):                       # booked by the ledger weeks earlier, with the bank's reference
        amount = 3_000_000 + n
        ledger.append((f"late{n}", amount, OCT - timedelta(days=20), f"ICBC-{n:04d}"))
        rows.append(Row(OCT + timedelta(days=n), f"ICBC-{n:04d}", amount, "late booking", f"late{n}"))
    for n in range(5):                        # the reference is the transaction's idempotency key
        ledger.append((f"wd-{n}", -(40_000 + n), OCT + timedelta(days=45), None))
        rows.append(Row(OCT + timedelta(days=20 + n), f"wd-{n}", -(40_000 + n), "withdrawal", f"wd-{n}"))
    for n in range(15):                       # bank fees the ledger never saw
        rows.append(Row(OCT + timedelta(days=n), "", -(100 + n), "手续费\u2028fee" if n == 3 else "手续费", None))
    for n in range(8):                        # the ledger's, not the bank's
        ledger.append((f"only{n}", 5_000_000 + n, OCT + timedelta(days=2 * n + 1), None))
    rng.shuffle(rows)
    return rows, ledger


def _file(rows: list[Row], *, encoding: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if encoding == "utf-8" else "\n")
    writer.writerow(["Date", "Reference", "Amount", "Description"])
    for n, row in enumerate(rows):
        description = row.description if encoding == "utf-8" else row.description.replace("\u2028", " ")
        writer.writerow([row.day.isoformat(), row.reference, _text(row.amount, n), description])
    text = out.getvalue()
    return ("\ufeff" + text).encode("utf-8") if encoding == "utf-8" else text.encode("gbk")


def _at(day: date) -> datetime:
    return datetime.combine(day, time(4), tzinfo=UTC)   # noon in the business time zone


def _book(conn, ledger) -> dict[str, int]:
    create_account(conn, NewAccount(BANK, "ICBC reserve", AccountType.ASSET, "CNY"))
    create_account(conn, NewAccount(WALLET, "U1", AccountType.LIABILITY, "CNY"))
    transfers = []
    for key, amount, day, reference in ledger:
        legs = [Leg(BANK, Side.DEBIT, amount), Leg(WALLET, Side.CREDIT, amount)] if amount > 0 else \
            [Leg(WALLET, Side.DEBIT, -amount), Leg(BANK, Side.CREDIT, -amount)]
        transfers.append(Transfer(key, "bank.move", legs, effective_at=_at(day),
                                  metadata={"bank_reference": reference} if reference else {}))
    return {key: p.transaction_id for (key, *_), p in zip(ledger, post(conn, transfers), strict=True)}


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_a_realistic_bank_file_finds_every_pair_and_totals_equal_the_breaks(conn, encoding):
    rows, ledger = _fixture()
    ids = _book(conn, ledger)
    data = _file(rows, encoding=encoding)
    assert len(rows) == 200 and (data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data) == (encoding == "utf-8")
    run = reconcile(conn, BANK, data, file_name="icbc-2026-10.csv")
    assert run.encoding == ("utf-8" if encoding == "utf-8" else "gb18030")
    expected = {n + 2: row for n, row in enumerate(rows)}   # line 1 is the header
    matched = {i.line.line_no: i for i in run.matched}
    # Every line that has its entry is matched; each pair has equal amounts, one entry per line.
    assert set(matched) == {line for line, row in expected.items() if row.key is not None}
    assert len({i.entry.account_version for i in run.matched}) == len(run.matched) == 184
    assert all(i.line.amount == i.entry.amount for i in run.matched)
    unique = {line: row for line, row in expected.items()
              if row.key is not None and row.amount != TRAP_AMOUNT and not row.key.startswith("dup")}
    assert all(matched[line].entry.transaction_id == ids[row.key] for line, row in unique.items())
    assert {i.rule for line, i in matched.items() if expected[line].reference} == {"reference"}
    # The traps: both lines of each paired, at the least total date distance.
    trap_days = sum(abs((i.entry.day - i.line.date).days) for i in run.matched if i.line.amount == TRAP_AMOUNT)
    assert trap_days == 3 * len(TRAPS)
    assert sorted(i.line.line_no for i in run.unmatched_bank) == \
        sorted(line for line, row in expected.items() if row.key is None)
    assert sorted(i.entry.transaction_id for i in run.unmatched_ledger) == sorted(ids[f"only{n}"] for n in range(8))
    # The totals identity: what the bank says minus what the ledger says is what the breaks say.
    assert run.bank_total == sum(row.amount for row in rows)
    assert run.bank_total - run.ledger_total == run.difference == \
        sum(i.line.amount for i in run.unmatched_bank) - sum(i.entry.amount for i in run.unmatched_ledger)
    fee_with_separator = next(i for i in run.unmatched_bank if i.line.amount == -103)
    assert fee_with_separator.line.description == ("手续费\u2028fee" if encoding == "utf-8" else "手续费 fee")


def test_matches_hold_across_runs(conn):
    rows, ledger = _fixture()
    ids = _book(conn, ledger)
    first = reconcile(conn, BANK, _file(rows, encoding="utf-8"))
    resent = [row for row in rows if row.key in ("p5", "p6", "late3")]
    ledger_only = [Row(OCT + timedelta(days=2 * n + 1), "", 5_000_000 + n, "late file", f"only{n}") for n in range(8)]
    second = reconcile(conn, BANK, _file(resent + ledger_only, encoding="utf-8"))
    assert sorted(i.entry.transaction_id for i in second.matched) == sorted(ids[f"only{n}"] for n in range(8))
    assert sorted(i.line.amount for i in second.unmatched_bank) == sorted(row.amount for row in resent)
    assert second.unmatched_ledger == []          # matched entries are not reported again either
    assert second.difference == sum(row.amount for row in resent)
    count, distinct = conn.execute("select count(*), count(distinct (account_id, account_version)) "
                                   "from ledger.reconciliation_matches").fetchone()
    assert count == distinct == 184 + 8
    assert len(get_reconciliation(conn, first.id).matched) == 184      # each run reads as it was
    assert len(get_reconciliation(conn, second.id).matched) == 8


def test_a_reference_matches_whatever_the_date(conn):
    _book(conn, [("old", 1_234, date(2026, 6, 1), "R-1"), ("near", 1_234, date(2026, 10, 5), None)])
    run = reconcile(conn, BANK, b"date,reference,amount\n2026-10-05,R-1,12.34\n2026-10-05,,12.34\n")
    assert [(i.line.line_no, i.rule, i.entry.day) for i in run.matched] == \
        [(2, "reference", date(2026, 6, 1)), (3, "amount_date", date(2026, 10, 5))]
    assert run.ledger_total == run.bank_total == 2_468 and run.difference == 0


def test_breaks_are_resolved_once_with_a_reason_and_a_user(conn, api, db_url, monkeypatch, capsys):
    rows, ledger = _fixture()
    _book(conn, ledger)
    run = reconcile(conn, BANK, _file(rows, encoding="utf-8"))
    fee, entry, match = run.unmatched_bank[0], run.unmatched_ledger[0], run.matched[0]
    after = resolve_break(conn, run.id, fee.item_no, "bank fee, booked as expense next day", "user alice")
    [resolved] = [i for i in after.breaks if i.item_no == fee.item_no]
    assert (resolved.resolution.reason, resolved.resolution.resolved_by) == \
        ("bank fee, booked as expense next day", "user alice")
    assert sum(1 for i in after.breaks if i.resolution is None) == len(run.breaks) - 1
    for item_no, words in ((fee.item_no, "resolved already"), (match.item_no, "a match"), (10_000, "no item")):
        with pytest.raises(ValidationError) as refused:
            resolve_break(conn, run.id, item_no, "again", "user bob")
        assert words in refused.value.message and refused.value.field == "itemId"
    with pytest.raises(ValidationError) as empty:
        resolve_break(conn, run.id, entry.item_no, "  ", "user bob")
    assert empty.value.field == "reason"

    mutation = """mutation($input: ResolveReconciliationBreakInput!) {
      resolveReconciliationBreak(input: $input) {
        __typename
        ... on Reconciliation { id breaks { itemId kind resolution { reason resolvedBy } } }
        ... on LedgerError { code message } } }"""
    variables = {"input": {"runId": str(run.id), "itemId": str(entry.item_no), "reason": "posted twice in error"}}
    denied = api.data(mutation, variables, role="auditor")["resolveReconciliationBreak"]
    assert denied["__typename"] == "Forbidden"
    body = api.data(mutation, variables, role="operator")["resolveReconciliationBreak"]
    [item] = [b for b in body["breaks"] if b["itemId"] == str(entry.item_no)]
    assert item["kind"] == "ledger" and item["resolution"]["reason"] == "posted twice in error"
    assert item["resolution"]["resolvedBy"].endswith("(operator)")
    query = """query($id: ID!) { reconciliation(id: $id) { encoding matched { rule }
                 breaks { itemId resolution { reason } } } }"""
    stored = api.data(query, {"id": str(run.id)}, role="auditor")["reconciliation"]
    assert stored["encoding"] == "utf-8" and len(stored["matched"]) == 184
    assert sum(1 for b in stored["breaks"] if b["resolution"]) == 2

    monkeypatch.setenv("DATABASE_URL", db_url)
    other = run.unmatched_bank[1]
    assert main(["reconcile", "resolve", "--run", str(run.id), "--item", str(other.item_no),
                 "--reason", "fee", "--by", "carol", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    [cli_item] = [i for i in printed["unmatchedBank"] if i["item"] == other.item_no]
    assert cli_item["resolution"]["resolvedBy"] == "carol" and printed["encoding"] == "utf-8"
    for table in ("reconciliation_resolutions", "reconciliation_matches"):
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(f"delete from ledger.{table}")
        assert "append-only" in str(refused.value)


@pytest.mark.parametrize("data, line, words", [
    # U+2028 inside a field is text: the bad amount is on line 4 (str.splitlines would say 5)
    ("date,reference,amount,description\n2026-10-01,a,1.00,x\u2028y\n2026-10-02,b,2.00,\n2026-10-03,c,x,\n"
     .encode(), 4, "not a number"),
    (b"date,reference,amount\r\n2026-10-01,a,\"1,00\"\r\n", 2, "not a number"),
    (b"date,reference,amount\n2026-10-01,a,(-1.00)\n", 2, "not a number"),
    (b"date,reference,amount\n2026-10-01,a,1,000.00\n", 2, "expected 3 fields"),
    (b"date,reference,amount\n2026-10-01,a,1.00\r2026-10-02,b,2.00\n", 2, "not valid CSV"),
    ("date,reference,amount,description\n2026-10-01,a,1.00,收款\n".encode("gbk") + b"2026-10-02,b,2.00,\x81\n",
     3, "not UTF-8 nor GBK"),
])
def test_bad_files_are_refused_naming_the_right_line(data, line, words):
    with pytest.raises(BankFileInvalid) as bad:
        read_bank_file(data, "CNY")
    assert bad.value.line == line and words in bad.value.message, bad.value.message


def test_bank_number_formats():
    data = b"date,reference,amount\r\n2026-10-01,,\"2,500.00\"\r\n2026-10-01,,(1.00)\r\n2026-10-01,,+1.00\r\n" \
           b"2026-10-01,,\"(1,234,567.89)\"\r\n2026-10-01,,-0.5\r\n"
    assert [x.amount for x in read_bank_file(data, "CNY").lines] == [250_000, -100, 100, -123_456_789, -50]


def test_least_cost_matching_finds_the_most_pairs_at_the_least_cost():
    # Greedy row by row would take column 0 for row 0 and leave row 1 without a partner.
    assert least_cost_matching([[1, 1], [2, None]]) == [(0, 1), (1, 0)]
    assert least_cost_matching([[0, 5, None], [None, 0, 1]]) == [(0, 0), (1, 1)]
    assert least_cost_matching([[None], [3], [1]]) == [(2, 0)]
    assert least_cost_matching([]) == []
