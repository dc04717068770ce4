"""Bank reconciliation: matching rules, stored runs, the same file twice, bad files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import psycopg
import pytest

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.errors import AccountNotFound, ValidationError
from ledger.posting import Leg, Transfer, post
from ledger.reconcile import BankFileInvalid, ReconciliationNotFound, get_reconciliation, parse_bank_csv, reconcile
from ledger_cli.main import main

BANK = "assets:reserves:icbc"
WALLET = "liabilities:wallets:u1"

STATEMENT = b"""date,reference,amount,description
2026-10-02,REF1,25.50,top-up u1
2026-10-05,,-10.05,withdrawal
2026-10-07,XYZ,99.00,unknown receipt
2026-10-08,REF4,12.00,short
2026-10-03,,1.00,first of two
2026-10-04,,1.00,second of two
2026-10-06,wd-key-7,-3.00,by idempotency key
"""


def _at(day: int) -> datetime:
    return datetime(2026, 10 if day > 0 else 9, day if day > 0 else 30 + day, 4, tzinfo=UTC)


def _move(key, amount_fen, day, *, reference=None):
    legs = [Leg(BANK, Side.DEBIT, amount_fen), Leg(WALLET, Side.CREDIT, amount_fen)]
    if amount_fen < 0:
        legs = [Leg(WALLET, Side.DEBIT, -amount_fen), Leg(BANK, Side.CREDIT, -amount_fen)]
    return Transfer(key, "bank.move", legs, effective_at=_at(day),
                    metadata={"bank_reference": reference} if reference else {})


def _book(conn):
    create_account(conn, NewAccount(BANK, "ICBC reserve", AccountType.ASSET, "CNY"))
    create_account(conn, NewAccount(WALLET, "U1", AccountType.LIABILITY, "CNY"))
    post(conn, [
        _move("t1", 2_550, 2, reference="REF1"),
        _move("t2", -1_005, 6),                   # 1 day after the bank's date
        _move("t4", 1_300, 8, reference="REF4"),  # the bank says 12.00
        _move("t5", 500, 4),                      # the bank never saw it
        _move("t6", 100, 4),
        _move("t7", 100, 3),
        _move("wd-key-7", -300, 6),
        _move("t0", 777, -1),                     # 2026-09-29: in the margin, another statement's
    ])


def test_matching_rules_and_totals(conn):
    _book(conn)
    run = reconcile(conn, BANK, STATEMENT, file_name="icbc-oct.csv")
    assert not run.already_imported
    matched = {(i.line.line_no, i.rule, i.entry.amount) for i in run.matched}
    assert matched == {(2, "reference", 2_550), (3, "amount_date", -1_005), (6, "amount_date", 100),
                       (7, "amount_date", 100), (8, "reference", -300)}
    by_line = {i.line.line_no: i.entry for i in run.matched}
    assert by_line[6].day == date(2026, 10, 3) and by_line[7].day == date(2026, 10, 4)  # closest date, one to one
    unmatched_bank = {i.line.line_no: i.note for i in run.unmatched_bank}
    assert set(unmatched_bank) == {4, 5}
    assert "reference found on transaction" in unmatched_bank[5] and "1300" in unmatched_bank[5]
    assert sorted(i.entry.amount for i in run.unmatched_ledger) == [500, 1_300]  # not the margin's 777
    assert (run.period_start, run.period_end) == (date(2026, 10, 2), date(2026, 10, 8))
    assert run.bank_total == 2_550 - 1_005 + 9_900 + 1_200 + 100 + 100 - 300
    assert run.ledger_total == 2_550 - 1_005 + 1_300 + 500 + 100 + 100 - 300
    assert run.difference == 9_900 + 1_200 - 1_300 - 500
    stored = get_reconciliation(conn, run.id)
    assert stored.matched == run.matched and stored.unmatched_bank == run.unmatched_bank
    assert stored.unmatched_ledger == run.unmatched_ledger and stored.difference == run.difference


def test_the_same_file_twice_is_recognized(conn):
    _book(conn)
    first = reconcile(conn, BANK, STATEMENT)
    again = reconcile(conn, BANK, STATEMENT)
    assert again.already_imported and again.id == first.id and again.file_sha256 == first.file_sha256
    assert conn.execute("select count(*) from ledger.reconciliation_runs").fetchone()[0] == 1
    other = reconcile(conn, BANK, STATEMENT + b"2026-10-08,,0.01,one more\n")
    assert not other.already_imported and other.id != first.id
    with pytest.raises(psycopg.Error) as refused:
        conn.execute("delete from ledger.reconciliation_items")
    assert "append-only" in str(refused.value)


@pytest.mark.parametrize("data, line, words", [
    (b"day,reference,amount\n2026-10-01,,1.00\n", 1, "expected date, reference, amount"),
    (b"date,reference\n2026-10-01,x\n", 1, "expected date"),
    (b"date,reference,amount\n2026-10-01,a,1.00\n2026-10-02,b,1,000.00\n", 3, "expected 3 fields"),
    (b"date,reference,amount\n2026-10-01,a,12,00\n", 2, "expected 3 fields"),
    (b"date,reference,amount\n2026-10-01,a,\xc2\xa512.00\n", 2, "not a number"),
    (b"date,reference,amount\n2026-10-01,a,1.005\n", 2, "more than 2 decimals"),
    (b"date,reference,amount\n2026-10-01,a,0.00\n", 2, "non-zero"),
    (b"date,reference,amount\n01/10/2026,a,1.00\n", 2, "not an ISO date"),
    (b"date,reference,amount\n2026-02-30,a,1.00\n", 2, "not an ISO date"),
    (b"date,reference,amount\n2026-10-01,a,1.00\n2026-10-02,caf\xe9,2.00\n", 3, "not UTF-8"),
    (b"date,reference,amount_minor\n2026-10-01,a,1.50\n", 2, "whole number of minor units"),
    (b"", 0, "empty"),
    (b"date,reference,amount\n", 0, "no lines"),
])
def test_bad_files_name_the_line(data, line, words):
    with pytest.raises(BankFileInvalid) as bad:
        parse_bank_csv(data, "CNY")
    assert bad.value.line == line and words in bad.value.message
    assert bad.value.code == "BANK_FILE_INVALID"


def test_formats_accepted():
    lines = parse_bank_csv("\ufeffAmount_Minor, Date ,Reference\r\n-250,2026-10-01,\"a,b\"\r\n\r\n".encode(), "CNY")
    assert [(x.line_no, x.date, x.reference, x.amount) for x in lines] == [(2, date(2026, 10, 1), "a,b", -250)]
    assert parse_bank_csv(b"date,reference,amount\n2026-10-01,,-20\n", "CNY")[0].amount == -2_000
    assert parse_bank_csv(b"date,reference,amount\n2026-10-01,,5\n", "JPY")[0].amount == 5


def test_refusals(conn):
    _book(conn)
    with pytest.raises(AccountNotFound):
        reconcile(conn, "assets:reserves:nobank", STATEMENT)
    with pytest.raises(ValidationError):
        reconcile(conn, BANK, STATEMENT, window_days=40)
    with pytest.raises(ValidationError):
        reconcile(conn, BANK, STATEMENT, time_zone="Mars/Olympus")
    with pytest.raises(ReconciliationNotFound):
        get_reconciliation(conn, 999)


def test_cli_reconcile(conn, db_url, monkeypatch, capsys, tmp_path):
    _book(conn)
    monkeypatch.setenv("DATABASE_URL", db_url)
    path = tmp_path / "icbc.csv"
    path.write_bytes(STATEMENT)
    assert main(["reconcile", "--account", BANK, "--file", str(path), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert len(body["matched"]) == 5 and body["differenceMinor"] == str(9_900 + 1_200 - 1_300 - 500)
    assert main(["reconcile", "--account", BANK, "--file", str(path)]) == 0
    assert "imported before" in capsys.readouterr().out
    path.write_bytes(b"date,reference,amount\n2026-10-01,a,x\n")
    assert main(["reconcile", "--account", BANK, "--file", str(path)]) == 2
    assert "BANK_FILE_INVALID: line 2:" in capsys.readouterr().err
