"""Statements out: CSV, JSON and PDF with the core's figures, reproducible with knownAt."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from pdf_reading import pdf_info, pdf_text

from ledger import calendar
from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.errors import ValidationError
from ledger.posting import Leg, Transfer, post
from ledger.statement_cut import journal_horizon
from ledger.statement_export import CSV_COLUMNS, cut_statement, to_csv, to_json, to_pdf
from ledger.statements import statement_page, statement_totals
from ledger_cli.main import main

WALLET = "liabilities:wallets:u1"
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)


def _setup(conn):
    create_account(conn, NewAccount("assets:bank:a", "Bank", AccountType.ASSET, "CNY"))
    create_account(conn, NewAccount(WALLET, "Wallet U1", AccountType.LIABILITY, "CNY", holder_id="u1"))


def _move(key, amount, day, *, out=False, description=""):
    legs = [Leg("assets:bank:a", Side.DEBIT, amount), Leg(WALLET, Side.CREDIT, amount)]
    if out:
        legs = [Leg(WALLET, Side.DEBIT, amount), Leg("assets:bank:a", Side.CREDIT, amount)]
    return Transfer(key, "wallet.move", legs, description=description,
                    effective_at=datetime(2026, 10, day, 12, tzinfo=UTC) if day > 0
                    else START + timedelta(days=day - 1))


def _book(conn):
    _setup(conn)
    post(conn, [_move("before", 10_000, -3),                         # opening: 100.00
                _move("in1", 2_550, 2, description="top-up 充值"),
                _move("out1", 1_005, 5, out=True, description="=HYPERLINK(\"x\")"),
                _move("in2", 1, 20)])


def test_figures_are_the_cores(conn):
    _book(conn)
    s = cut_statement(conn, WALLET, START, END)
    assert (s.opening, s.closing, s.total_debits, s.total_credits) == (10_000, 11_546, 1_005, 2_551)
    assert [line.running_balance for line in s.lines] == [12_550, 11_545, 11_546]
    account_id = s.account.id
    page = statement_page(conn, account_id, "CNY", START, END, first=500, known_at=s.known_at)
    assert [(line.transaction_id, line.running_balance) for line in page.lines] == \
        [(line.transaction_id, line.running_balance) for line in s.lines]
    totals = statement_totals(conn, account_id, START, END, s.known_at)
    assert (totals.opening, totals.closing, totals.total_debits, totals.total_credits) == \
        (s.opening, s.closing, s.total_debits, s.total_credits)
    assert s.position > 0 and s.later_changes == [] and s.closing_now == s.closing


def test_csv_opens_as_written(conn):
    _book(conn)
    data = to_csv(cut_statement(conn, WALLET, START, END))
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert list(rows[0]) == CSV_COLUMNS
    assert [r["line"] for r in rows] == ["opening", "entry", "entry", "entry", "closing", "totals"]
    opening, first, second, _, closing, totals = rows
    assert (opening["balance"], opening["balance_minor"], opening["effective_date"]) == ("100.00", "10000", "2026-10-01")
    assert (first["credit"], first["credit_minor"], first["debit"]) == ("25.50", "2550", "")
    assert (first["balance"], first["description"], first["kind"]) == ("125.50", "top-up 充值", "wallet.move")
    assert first["effective_date"] == "2026-10-02" and first["effective_at"] == "2026-10-02T12:00:00Z"
    assert second["description"].startswith("'=")                # never a formula in a spreadsheet
    assert (second["debit"], second["debit_minor"]) == ("10.05", "1005")
    assert (closing["balance"], closing["balance_minor"]) == ("115.46", "11546")
    assert (totals["debit"], totals["credit"], totals["debit_minor"], totals["credit_minor"]) == \
        ("10.05", "25.51", "1005", "2551")
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+Z", r["known_at"]) for r in rows)


def test_reproduced_with_known_at_and_later_backdated_postings_listed(conn):
    _book(conn)
    original = cut_statement(conn, WALLET, START, END)
    post(conn, [_move("late-in-period", 300, 10), _move("late-before", 700, -10)])
    again = cut_statement(conn, WALLET, START, END, known_at=original.known_at)
    assert to_csv(again) == to_csv(original)
    assert [(c.amount, c.affects) for c in again.later_changes] == [(300, "period"), (700, "opening")]
    assert again.closing_now == original.closing + 1_000
    now = cut_statement(conn, WALLET, START, END)
    assert now.opening == original.opening + 700 and now.closing == again.closing_now
    assert now.later_changes == []
    body = to_json(again)
    assert body["closing"]["minor"] == "11546" and body["closingNow"]["units"] == "125.46"
    assert [c["affects"] for c in body["laterChanges"]] == ["period", "opening"]


def test_default_cut_waits_for_postings_in_flight(conn, db_url):
    """A posting recorded before the cut but committed after it must not change the statement
    when it is reproduced: the default cut lies before every transaction still in flight."""
    _book(conn)
    with psycopg.connect(db_url, autocommit=True) as writer:
        with writer.transaction():
            post(writer, [_move("in-flight", 4_000, 15)])
            cut = cut_statement(conn, WALLET, START, END)
            in_flight_at = writer.execute("select recorded_at from ledger.transactions where idempotency_key = "
                                          "'in-flight'").fetchone()[0]
            assert cut.known_at < in_flight_at
    again = cut_statement(conn, WALLET, START, END, known_at=cut.known_at)
    assert to_csv(again) == to_csv(cut)
    assert [c.amount for c in again.later_changes] == [4_000]


def test_known_at_must_be_final(conn):
    _book(conn)
    horizon, _ = journal_horizon(conn)
    with pytest.raises(ValidationError) as refused:
        cut_statement(conn, WALLET, START, END, known_at=horizon + timedelta(hours=1))
    assert refused.value.field == "knownAt"
    with pytest.raises(ValidationError):
        cut_statement(conn, WALLET, END, START)


def _check_pdf(data: bytes) -> int:
    """A PDF poppler reads; its number of pages."""
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    return int(pdf_info(data)["Pages"])


def test_pdf_is_valid_and_paginated(conn):
    _book(conn)
    pdf = to_pdf(cut_statement(conn, WALLET, START, END))
    assert _check_pdf(pdf) == 1
    assert re.search(r"Closing balance +115\.46", pdf_text(pdf))
    post(conn, [_move(f"many{n}", 1 + n, 1 + n % 28) for n in range(80)])
    assert _check_pdf(to_pdf(cut_statement(conn, WALLET, START, END))) >= 2


def test_cli_statement_formats(conn, db_url, monkeypatch, capsysbinary, tmp_path):
    _book(conn)
    monkeypatch.setenv("DATABASE_URL", db_url)
    out = tmp_path / "s.json"
    assert main(["statement", "--account", WALLET, "--from", "2026-10-01", "--to", "2026-11-01",
                 "--format", "json", "-o", str(out)]) == 0
    body = json.loads(out.read_text())
    assert body["opening"]["minor"] == "10000" and len(body["lines"]) == 3
    assert main(["statement", "--account", WALLET, "--from", "2026-10-01", "--to", "2026-11-01",
                 "--known-at", body["knownAt"], "--format", "csv"]) == 0
    data = capsysbinary.readouterr().out
    assert data.decode("utf-8-sig").splitlines()[0] == ",".join(CSV_COLUMNS)
    assert main(["statement", "--account", WALLET, "--from", "2026-10-01", "--to", "2026-11-01",
                 "--format", "pdf"]) == 0
    assert _check_pdf(capsysbinary.readouterr().out) == 1
    assert main(["statement", "--account", "liabilities:wallets:nobody", "--from", "2026-10-01",
                 "--to", "2026-11-01"]) == 2
    assert main(["statement", "--account", WALLET, "--from", "October", "--to", "2026-11-01"]) == 2


def test_dates_are_business_days_at_the_day_boundary(conn, monkeypatch):
    monkeypatch.delenv(calendar.time_zone_variable, raising=False)
    _setup(conn)
    midnight = calendar.day_start(date(2026, 10, 10))            # 2026-10-09T16:00:00Z
    legs = [Leg("assets:bank:a", Side.DEBIT, 7), Leg(WALLET, Side.CREDIT, 7)]
    post(conn, [Transfer("last", "wallet.move", legs, effective_at=midnight - timedelta(microseconds=1)),
                Transfer("first", "wallet.move", legs, effective_at=midnight)])
    start = calendar.parse_instant("2026-10-09", field="from")   # 2026-10-08T16:00:00Z
    s = cut_statement(conn, WALLET, start, calendar.parse_instant("2026-10-11", field="to"))
    rows = list(csv.DictReader(io.StringIO(to_csv(s).decode("utf-8-sig"))))
    assert rows[0]["effective_date"] == "2026-10-09" and rows[0]["effective_at"] == "2026-10-08T16:00:00Z"
    assert [(r["effective_date"], r["effective_at"]) for r in rows if r["line"] == "entry"] == [
        ("2026-10-09", "2026-10-09T15:59:59.999999Z"), ("2026-10-10", "2026-10-09T16:00:00Z")]
    day = cut_statement(conn, WALLET, *calendar.day_bounds(date(2026, 10, 9)))
    assert [line.effective_at for line in day.lines] == [midnight - timedelta(microseconds=1)]
    assert (day.opening, day.closing) == (0, 7)


def test_cli_statement_dates_are_business_days(db_url, conn, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv(calendar.time_zone_variable, raising=False)
    _setup(conn)
    midnight = calendar.day_start(date(2026, 10, 10))
    legs = [Leg("assets:bank:a", Side.DEBIT, 7), Leg(WALLET, Side.CREDIT, 7)]
    post(conn, [Transfer("last", "wallet.move", legs, effective_at=midnight - timedelta(microseconds=1)),
                Transfer("first", "wallet.move", legs, effective_at=midnight)])
    out = tmp_path / "s.json"
    assert main(["statement", "--account", WALLET, "--from", "2026-10-10", "--to", "2026-10-11",
                 "--format", "json", "-o", str(out)]) == 0
    body = json.loads(out.read_text(encoding="utf-8"))
    assert (body["opening"]["minor"], body["closing"]["minor"]) == ("7", "14")
