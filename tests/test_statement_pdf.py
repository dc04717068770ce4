"""Statement PDFs read back with poppler as a person's viewer shows them: Chinese names and
descriptions, thousands separators, times in the business time zone, the font embedded as a
subset, every page numbered; the same cut gives the same bytes; the HTTP route and the CLI
give the same document."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from pdf_reading import pdf_fonts, pdf_info, pdf_text

from ledger import calendar, statement_pdf
from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.posting import Leg, Transfer, post
from ledger.statement_export import cut_statement, to_pdf
from ledger.statement_pdf import FONT_FILE
from ledger_cli.main import main

WALLET = "liabilities:wallets:zhang"
NAME = "张敏的钱包"
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)


def _book(conn, *, extra: int = 0) -> None:
    create_account(conn, NewAccount("assets:bank:icbc", "工商银行 备付金", AccountType.ASSET, "CNY"))
    create_account(conn, NewAccount(WALLET, NAME, AccountType.LIABILITY, "CNY", holder_id="zhang"))

    def move(key: str, amount: int, at: datetime, description: str, *, out: bool = False) -> Transfer:
        legs = [Leg("assets:bank:icbc", Side.DEBIT, amount), Leg(WALLET, Side.CREDIT, amount)]
        if out:
            legs = [Leg(WALLET, Side.DEBIT, amount), Leg("assets:bank:icbc", Side.CREDIT, amount)]
        return Transfer(key, "wallet.move", legs, description=description, effective_at=at)

    post(conn, [
        # 2026-10-02T16:30:00Z is 2026-10-03 00:30:00 in Shanghai: the next business day.
        move("in", 123_456_789, datetime(2026, 10, 2, 16, 30, tzinfo=UTC), "工资 十月 top-up"),
        move("out", 2_345_678, datetime(2026, 10, 5, 1, 15, 7, tzinfo=UTC), "房租 rent", out=True),
        move("long", 1, datetime(2026, 10, 6, 4, tzinfo=UTC), "备注 " + "很长的说明 " * 30),
        *[move(f"many{n}", 100 + n, datetime(2026, 10, 7, tzinfo=UTC) + timedelta(minutes=n), f"第{n}笔")
          for n in range(extra)],
    ])


def test_chinese_separators_and_business_zone_times(conn, monkeypatch):
    monkeypatch.delenv(calendar.time_zone_variable, raising=False)      # Asia/Shanghai
    _book(conn)
    data = to_pdf(cut_statement(conn, WALLET, START, END))
    text = pdf_text(data)
    assert NAME in text and "工资 十月 top-up" in text and "房租 rent" in text
    assert "Asia/Shanghai" in text
    entries = {line.split()[2]: line for line in text.splitlines() if re.match(r" *2026-10-\d\d \d\d:", line)}
    assert entries, text
    first = next(line for line in text.splitlines() if "工资" in line)
    assert re.search(r"2026-10-03 00:30:00 +\d+ +wallet\.move +工资 十月 top-up +1,234,567\.89 +1,234,567\.89$",
                     first.rstrip()), first
    second = next(line for line in text.splitlines() if "房租" in line)
    assert re.search(r"2026-10-05 09:15:07 .*房租 rent +23,456\.78 +1,211,111\.11$", second.rstrip()), second
    assert re.search(r"Closing balance +1,211,111\.12", text)
    assert re.search(r"Totals +23,456\.78 +1,234,567\.90", text)
    # A long description wraps within its column instead of running off the page.
    assert text.count("很长的说明") == 30
    assert pdf_info(data)["Title"] == f"Statement of account {WALLET}  {NAME}  (CNY)"


def test_times_follow_the_configured_business_zone(conn, monkeypatch):
    _book(conn)
    monkeypatch.setenv(calendar.time_zone_variable, "America/New_York")
    text = pdf_text(to_pdf(cut_statement(conn, WALLET, START, END)))
    assert "America/New_York" in text and "Asia/Shanghai" not in text
    assert re.search(r"2026-10-02 12:30:00 .*工资", text)      # EDT, UTC-4
    assert "2026-10-03 00:30:00" not in text


def test_font_is_embedded_as_a_subset_and_pages_are_numbered(conn):
    _book(conn, extra=120)
    data = to_pdf(cut_statement(conn, WALLET, START, END))
    fonts = pdf_fonts(data).splitlines()[2:]
    assert fonts and all(re.match(r"[A-Z]{6}\+LedgerKai", line) for line in fonts), fonts
    assert all(re.search(r"\byes +yes +yes\b", line) for line in fonts), fonts    # embedded, subset, unicode map
    assert len(data) < FONT_FILE.stat().st_size / 10
    pages = int(pdf_info(data)["Pages"])
    assert pages >= 3
    text = pdf_text(data)
    assert [f"Page {n} of {pages}" in text for n in range(1, pages + 1)] == [True] * pages
    assert text.count("Effective") == pages          # the column headings on every page
    assert "第119笔" in text and re.search(r"Closing balance +1,211,\d{3}\.\d\d", text)


def test_same_cut_same_bytes_and_later_postings_noted(conn):
    _book(conn)
    first = cut_statement(conn, WALLET, START, END)
    assert to_pdf(cut_statement(conn, WALLET, START, END, known_at=first.known_at)) == to_pdf(first)
    post(conn, [Transfer("later", "wallet.move", [Leg("assets:bank:icbc", Side.DEBIT, 5), Leg(WALLET, Side.CREDIT, 5)],
                         effective_at=datetime(2026, 10, 9, tzinfo=UTC))])
    again = cut_statement(conn, WALLET, START, END, known_at=first.known_at)
    assert "closing if cut now" not in pdf_text(to_pdf(first))
    assert "closing if cut now: 1,211,111.17" in pdf_text(to_pdf(again))


@pytest.mark.parametrize("edge", [(0, "0.00"), (2**63 - 1, "92,233,720,368,547,758.07")])
def test_extreme_amounts_print_whole(conn, edge):
    amount, printed = edge
    create_account(conn, NewAccount("assets:bank:icbc", "Bank", AccountType.ASSET, "CNY"))
    create_account(conn, NewAccount(WALLET, NAME, AccountType.LIABILITY, "CNY"))
    if amount:
        post(conn, [Transfer("max", "wallet.move", [Leg("assets:bank:icbc", Side.DEBIT, amount),
                                                    Leg(WALLET, Side.CREDIT, amount)],
                             effective_at=datetime(2026, 10, 9, tzinfo=UTC))])
    text = pdf_text(to_pdf(cut_statement(conn, WALLET, START, END)))
    assert re.search(rf"Closing balance +{re.escape(printed)}", text)


def test_http_route_and_cli_give_the_same_pdf(api, conn, db_url, monkeypatch, capsysbinary):
    _book(conn)
    s = cut_statement(conn, WALLET, START, END)
    known = s.known_at.isoformat()
    params = {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z", "knownAt": known}
    auditor = {"Authorization": f"Bearer {api.token('auditor')}"}
    response = api.client.get(f"/statements/{WALLET}.pdf", params=params, headers=auditor)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.content == to_pdf(s)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["statement", "--account", WALLET, "--from", params["from"], "--to", params["to"],
                 "--known-at", known, "--format", "pdf"]) == 0
    assert capsysbinary.readouterr().out == response.content
    assert NAME in pdf_text(response.content)


def test_a_statement_too_long_for_a_pdf_is_refused_by_name(api, conn, db_url, monkeypatch):
    """Past pdf_lines_max lines the PDF is refused (400, field `to`), the CSV still served."""
    _book(conn)
    monkeypatch.setattr(statement_pdf, "pdf_lines_max", 2)
    params = {"from": "2026-10-01", "to": "2026-11-01"}
    auditor = {"Authorization": f"Bearer {api.token('auditor')}"}
    refused = api.client.get(f"/statements/{WALLET}.pdf", params=params, headers=auditor)
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "to" and "at most 2 lines" in refused.json()["error"]["message"]
    assert api.client.get(f"/statements/{WALLET}.csv", params=params, headers=auditor).status_code == 200
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["statement", "--account", WALLET, "--from", "2026-10-01", "--to", "2026-11-01",
                 "--format", "pdf"]) == 2
