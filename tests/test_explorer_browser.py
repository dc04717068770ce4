"""The explorer page in a real browser (Debian's chromium, driven by Playwright) against a real
`ledger-core serve`, with a book whose accounts have Chinese names. Each step checks what a person
sees once the page has rendered: the words, the figures, which controls are there and enabled,
and the error shown for a bad token, a holder's token, an unknown account and bad dates. Every
view is photographed into the test's temporary directory (and, when EXPLORER_SCREENSHOTS names a
directory, there too: docs/explorer/ holds the ones the README shows).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, require_chromium, serving
from pdf_reading import pdf_text

from graphql_api.explorer import QUERIES, journal_page_size, statement_page_size
from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.posting import Leg, Transfer, post
from ledger.tokens import create_token

BANK, ZHANG, LI, FEES = "assets:bank:icbc", "liabilities:wallets:zhang", "liabilities:wallets:li", "revenue:fees"
NAMES = {BANK: "工商银行备付金", ZHANG: "张敏的钱包", LI: "李雷的钱包", FEES: "手续费收入"}
PAYMENTS = 29   # with the salary: 30 lines on Zhang's statement, two pages; 31 transactions, two journal pages
VIEWS = ["sign-in", "sign-in-refused", "account", "statement-page-2", "unknown-account", "bad-date", "trial-balance",
         "journal"]


def _book(conn: Any) -> None:
    create_account(conn, NewAccount(BANK, NAMES[BANK], AccountType.ASSET, "CNY"))
    create_account(conn, NewAccount(ZHANG, NAMES[ZHANG], AccountType.LIABILITY, "CNY", holder_id="zhang"))
    create_account(conn, NewAccount(LI, NAMES[LI], AccountType.LIABILITY, "CNY", holder_id="li"))
    create_account(conn, NewAccount(FEES, NAMES[FEES], AccountType.REVENUE, "CNY"))
    # 2026-10-02T16:30:00Z is 00:30 on 3 October in Shanghai, the business time zone.
    salary = Transfer("salary", "wallet.top_up", [Leg(BANK, Side.DEBIT, 123_456_789), Leg(ZHANG, Side.CREDIT, 123_456_789)],
                      description="工资 十月 <b>salary</b>", effective_at=datetime(2026, 10, 2, 16, 30, tzinfo=UTC))
    payments = [Transfer(f"pay{n}", "payment.direct", [Leg(ZHANG, Side.DEBIT, 100_000 + n), Leg(LI, Side.CREDIT, 100_000 + n)],
                         description=f"转账给李雷 第{n + 1}笔",
                         effective_at=datetime(2026, 10, 5, 2, tzinfo=UTC) + timedelta(hours=n))
                for n in range(PAYMENTS)]
    fee = Transfer("fee", "fee.charge", [Leg(LI, Side.DEBIT, 500), Leg(FEES, Side.CREDIT, 500)],
                   description="手续费", effective_at=datetime(2026, 10, 20, 8, tzinfo=UTC))
    for batch in ([salary], payments, [fee]):   # three commits: the journal lists them in this order
        post(conn, batch)


ZHANG_CLOSING = 123_456_789 - sum(100_000 + n for n in range(PAYMENTS))


def _yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d} CNY"


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[str]:
    with serving(db_url, tmp_path / "serve.log", {"LEDGER_BUSINESS_TIME_ZONE": "Asia/Shanghai"}) as base:
        yield base


class Recorder:
    """Photographs each view (full page) into the test's directory and, if asked, the docs'."""

    def __init__(self, page: Any, directory: Path) -> None:
        self.page, self.directory, self.taken = page, directory, []
        self.keep = Path(os.environ["EXPLORER_SCREENSHOTS"]) if os.environ.get("EXPLORER_SCREENSHOTS") else None

    def shot(self, name: str) -> None:
        self.page.evaluate("() => document.fonts.ready.then(() => document.fonts.status)")
        path = self.directory / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        self.taken.append(name)
        if self.keep is not None:  # the record kept in the repository: what the window shows, to save bytes
            self.keep.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(self.keep / f"{name}.png"))


def _texts(page: Any, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(selector, "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")


@pytest.mark.timeout(240)
def test_an_auditor_reads_the_book_through_the_page(db_url, conn, served, tmp_path):
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    _book(conn)
    auditor = create_token(conn, "auditor").token
    holder = create_token(conn, "holder", "zhang").token
    shots = tmp_path / "screenshots"
    shots.mkdir()
    requested: list[str] = []
    operations: list[str] = []
    refusals: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 800}, accept_downloads=True)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))

            def on_request(request: Any) -> None:
                if request.url.endswith("/graphql") and request.method == "POST":
                    operations.append(request.post_data_json["operationName"])

            def on_response(response: Any) -> None:
                if response.url.endswith("/graphql") and response.status == 200:
                    body = response.json()
                    refusals.extend(e["extensions"]["code"] for e in body.get("errors") or []
                                    if e["extensions"]["code"] == "FORBIDDEN")

            page.on("request", on_request)
            page.on("response", on_response)
            shot = Recorder(page, shots).shot
            alert = page.get_by_role("alert")

            # Signing in: the form, then a refused token, then a holder's, then the auditor's.
            page.goto(f"{served}/explorer")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            expect(page.get_by_label("Bearer token")).to_be_visible()
            expect(page.get_by_role("button", name="Account")).to_be_hidden()
            expect(alert).to_be_hidden()
            shot("sign-in")
            page.get_by_label("Bearer token").fill("lct_not-a-token")
            page.get_by_role("button", name="Sign in").click()
            expect(alert).to_contain_text("the token was refused: it is unknown, expired or revoked")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            shot("sign-in-refused")
            page.get_by_label("Bearer token").fill(holder)
            page.get_by_role("button", name="Sign in").click()
            expect(alert).to_contain_text("the explorer needs an auditor's token")
            expect(alert).to_contain_text("FORBIDDEN")
            page.get_by_label("Bearer token").fill(auditor)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Account", exact=True)).to_be_visible()
            expect(alert).to_be_hidden()
            codes = page.eval_on_selector_all("#account-codes option", "os => os.map(o => [o.value, o.textContent])")
            assert codes == [[c, f"{NAMES[c]} (CNY)"] for c in sorted(NAMES)]
            assert page.evaluate("() => sessionStorage.length") == 1 and \
                page.evaluate("() => localStorage.length") == 0

            # An account: its balance now and at the end of a day, and page 1 of its statement.
            page.get_by_label("Account").fill(ZHANG)
            page.get_by_label("Balance as of (end of day)").fill("2026-10-03")
            page.get_by_label("Statement from").fill("2026-10-01")
            page.get_by_label("to (exclusive)").fill("2026-11-01")
            page.get_by_role("button", name="Show").click()
            expect(page.locator("#account-title")).to_have_text(f"{ZHANG} — 张敏的钱包")
            assert _texts(page, "#balances tbody tr") == [
                ["Now", _yuan(ZHANG_CLOSING), _yuan(ZHANG_CLOSING), _yuan(ZHANG_CLOSING)],
                ["As of the end of 2026-10-03 (Asia/Shanghai)", "1,234,567.89 CNY", "—", "—"]]
            expect(page.locator("#account-facts")).to_contain_text("LIABILITY")
            expect(page.locator("#statement-cut")).to_contain_text(
                "2026-10-01 00:00:00 to 2026-11-01 00:00:00 (Asia/Shanghai, end exclusive), as known at")
            assert _texts(page, "#statement-summary tbody tr") == [
                ["0.00 CNY", _yuan(123_456_789 - ZHANG_CLOSING), "1,234,567.89 CNY", _yuan(ZHANG_CLOSING)]]
            first_page = _texts(page, "#statement tbody tr")
            assert len(first_page) == statement_page_size
            assert first_page[0] == ["2026-10-03 00:30:00", first_page[0][1], "wallet.top_up", "工资 十月 <b>salary</b>",
                                     "", "1,234,567.89 CNY", "1,234,567.89 CNY"]
            assert first_page[1] == ["2026-10-05 10:00:00", first_page[1][1], "payment.direct", "转账给李雷 第1笔",
                                     "1,000.00 CNY", "", "1,233,567.89 CNY"]
            expect(page.locator("#statement-page")).to_have_text("Page 1")
            expect(page.get_by_role("button", name="Previous page")).to_be_disabled()
            expect(page.get_by_role("button", name="Next page")).to_be_enabled()
            expect(page.get_by_role("button", name="Download CSV")).to_be_enabled()
            expect(page.get_by_role("button", name="Download PDF")).to_be_enabled()
            assert page.evaluate("""async () => { await document.fonts.ready;
                return [...document.fonts].some(f => f.family.includes('Ledger Kai') && f.status === 'loaded'); }""")
            shot("account")

            # Page 2 through the statement's cursor, and back.
            page.get_by_role("button", name="Next page").click()
            expect(page.locator("#statement-page")).to_have_text("Page 2")
            second_page = _texts(page, "#statement tbody tr")
            assert len(second_page) == PAYMENTS + 1 - statement_page_size
            assert second_page[-1][3] == f"转账给李雷 第{PAYMENTS}笔" and second_page[-1][6] == _yuan(ZHANG_CLOSING)
            expect(page.get_by_role("button", name="Next page")).to_be_disabled()
            expect(page.get_by_role("button", name="Previous page")).to_be_enabled()
            shot("statement-page-2")
            page.get_by_role("button", name="Previous page").click()
            expect(page.locator("#statement-page")).to_have_text("Page 1")
            assert _texts(page, "#statement tbody tr") == first_page

            # The statement as files, cut where the page was.
            with page.expect_download() as csv_download:
                page.get_by_role("button", name="Download CSV").click()
            csv_text = Path(csv_download.value.path()).read_text(encoding="utf-8-sig")
            assert csv_download.value.suggested_filename == f"statement-{ZHANG.replace(':', '_')}-2026-09-30-2026-10-31.csv"
            assert "工资 十月 <b>salary</b>" in csv_text and f"{ZHANG_CLOSING / 100:.2f}" in csv_text
            with page.expect_download() as pdf_download:
                page.get_by_role("button", name="Download PDF").click()
            pdf = Path(pdf_download.value.path()).read_bytes()
            text = pdf_text(pdf)
            assert "张敏的钱包" in text and "2026-10-03 00:30:00" in text and "1,234,567.89" in text
            expect(alert).to_be_hidden()

            # What goes wrong is said on the page.
            page.get_by_label("Account").fill("liabilities:wallets:nobody")
            page.get_by_role("button", name="Show").click()
            expect(alert).to_have_text("no account with code liabilities:wallets:nobody (ACCOUNT_NOT_FOUND)")
            expect(alert).to_be_in_viewport()
            expect(page.locator("#statement")).to_be_hidden()      # no figures of another account beside it
            shot("unknown-account")
            page.get_by_label("Account").fill(ZHANG)
            page.get_by_label("Statement from").fill("2026-02-30")
            page.get_by_role("button", name="Show").click()
            expect(alert).to_have_text('Statement from must be a date YYYY-MM-DD between 1970 and 9998, got "2026-02-30" '
                                       "(BAD_DATE)")
            expect(alert).to_be_in_viewport()
            shot("bad-date")
            page.get_by_label("Statement from").fill("2026-11-01")
            page.get_by_label("to (exclusive)").fill("2026-10-01")
            page.get_by_role("button", name="Show").click()
            expect(alert).to_contain_text("VALIDATION")     # the server's own refusal, shown as it said it
            page.get_by_label("Statement from").fill("2026-10-01")
            page.get_by_label("to (exclusive)").fill("2026-11-01")
            page.get_by_role("button", name="Show").click()
            expect(alert).to_be_hidden()

            # The trial balance, now and at the end of a day.
            page.get_by_role("button", name="Trial balance").click()
            expect(page.locator("#trial-balance-status")).to_have_text(
                "Now: balanced, debits equal credits in every currency.")
            lines = _texts(page, "#trial-balance-lines tbody tr")
            paid = sum(100_000 + n for n in range(PAYMENTS))
            assert lines == [
                [BANK, NAMES[BANK], "1,234,567.89 CNY", ""],
                [LI, NAMES[LI], "", _yuan(paid - 500)],
                [ZHANG, NAMES[ZHANG], "", _yuan(ZHANG_CLOSING)],
                [FEES, NAMES[FEES], "", "5.00 CNY"],
            ]
            assert _texts(page, "#trial-balance-lines tfoot tr") == [
                ["Total CNY", "balanced", "1,234,567.89 CNY", "1,234,567.89 CNY"]]
            shot("trial-balance")
            page.get_by_label("As of (end of day, empty for now)").fill("2026-10-04")
            page.get_by_role("button", name="Show").click()
            expect(page.locator("#trial-balance-status")).to_contain_text("As of the end of 2026-10-04 (Asia/Shanghai)")
            assert [line for line in _texts(page, "#trial-balance-lines tbody tr") if line[2] or line[3]] == [
                [BANK, NAMES[BANK], "1,234,567.89 CNY", ""], [ZHANG, NAMES[ZHANG], "", "1,234,567.89 CNY"]]
            page.get_by_label("As of (end of day, empty for now)").fill("yesterday")
            page.get_by_role("button", name="Show").click()
            expect(alert).to_contain_text('Trial balance as of must be a date YYYY-MM-DD between 1970 and 9998, got "yesterday"')
            expect(page.locator("#trial-balance-lines")).to_be_hidden()

            # The journal feed, page by page.
            page.get_by_role("button", name="Journal").click()
            expect(alert).to_be_hidden()
            expect(page.locator("#journal-page")).to_have_text("Page 1")
            rows = _texts(page, "#journal-lines tbody tr")
            assert len(rows) == journal_page_size
            assert rows[0][1:5] == ["2026-10-03 00:30:00", rows[0][2], "wallet.top_up", "工资 十月 <b>salary</b>"]
            assert rows[0][5].splitlines() == [f"Dr {BANK} (工商银行备付金) 1,234,567.89 CNY",
                                               f"Cr {ZHANG} (张敏的钱包) 1,234,567.89 CNY"]
            assert re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d:\d\d", rows[0][2])
            expect(page.get_by_role("button", name="First page")).to_be_disabled()
            shot("journal")
            page.get_by_role("button", name="Next page").click()
            expect(page.locator("#journal-page")).to_have_text("Page 2")
            rows = _texts(page, "#journal-lines tbody tr")
            assert len(rows) == PAYMENTS + 2 - journal_page_size and rows[-1][3:5] == ["fee.charge", "手续费"]
            expect(page.get_by_role("button", name="Next page")).to_be_disabled()

            # Signing out forgets the token.
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            assert page.evaluate("() => sessionStorage.length") == 0
            assert "张敏" not in page.evaluate("() => document.body.innerText + document.body.textContent")
        finally:
            browser.close()

    assert set(operations) == set(QUERIES), set(QUERIES) ^ set(operations)
    assert refusals == ["FORBIDDEN"]                     # the holder's sign-in only
    strays = [url for url in requested if not url.startswith(served) and not url.startswith("blob:")]
    assert strays == [], f"requests left the server: {strays}"
    assert sorted(os.listdir(shots)) == sorted(f"{name}.png" for name in VIEWS)
