"""Queries over HTTP: accounts, balances as of / known at, entries and statement pages (edges:
empty, exactly one page, last page), transactions, trial balance, rollup, and query counts."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from book import BANK, MERCHANT_M1, WALLET_U1, WALLET_U2, open_book, spend, top_up
from graphql_client import Api, StatementCounter

from graphql_api.app import create_app
from ledger.accounts import Side
from ledger.posting import Leg, Transfer, post

T0 = datetime(2026, 1, 1, tzinfo=UTC)

ENTRIES = """query($code: String!, $first: Int, $after: String, $from: DateTime, $to: DateTime) {
  account(code: $code) { entries(first: $first, after: $after, from: $from, to: $to) {
    edges { cursor node { id side amount { amount } layer effectiveAt accountVersion balanceAfter { amount } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }"""

STATEMENT = """query($code: String!, $from: DateTime!, $to: DateTime!, $first: Int, $after: String) {
  statement(accountCode: $code, from: $from, to: $to, first: $first, after: $after) {
    account { code } knownAt opening { amount } closing { amount } totalDebits { amount } totalCredits { amount }
    entries { edges { cursor node { runningBalance { amount } entry { id amount { amount } side effectiveAt } } }
              pageInfo { hasNextPage endCursor } } } }"""


def daily_top_ups(conn, wallet, days, amount=100, start=T0):
    """One top-up a day, backdated, all in one batch."""
    post(conn, [Transfer(f"{wallet}-day-{d}", "wallet.top_up", [Leg(BANK, Side.DEBIT, amount),
                Leg(wallet, Side.CREDIT, amount)], effective_at=start + timedelta(days=d)) for d in range(days)])


def entries_page(api, code, **variables):
    return api.data(ENTRIES, {"code": code, **variables})["account"]["entries"]


def test_account_fields_and_unknown_account(api, conn):
    open_book(conn)
    account = api.data("""{ account(code: "liabilities:wallets:U1") { id code name type normalSide currency
        holderId status minBalance maxBalance createdAt } }""")["account"]
    assert account["code"] == WALLET_U1 and account["holderId"] == "U1" and account["minBalance"] == "0"
    assert (account["type"], account["normalSide"], account["status"]) == ("LIABILITY", "CREDIT", "ACTIVE")
    assert api.data('{ account(code: "liabilities:wallets:NOPE") { id } }')["account"] is None


def test_entries_pagination_edges(api, conn):
    open_book(conn)
    empty = entries_page(api, WALLET_U1, first=10)
    assert empty["edges"] == [] and empty["pageInfo"]["hasNextPage"] is False and empty["pageInfo"]["endCursor"] is None
    daily_top_ups(conn, WALLET_U1, 5)
    exact = entries_page(api, WALLET_U1, first=5)
    assert len(exact["edges"]) == 5 and exact["pageInfo"]["hasNextPage"] is False
    first = entries_page(api, WALLET_U1, first=2)
    assert len(first["edges"]) == 2 and first["pageInfo"]["hasNextPage"] is True
    second = entries_page(api, WALLET_U1, first=2, after=first["pageInfo"]["endCursor"])
    last = entries_page(api, WALLET_U1, first=2, after=second["pageInfo"]["endCursor"])
    assert len(last["edges"]) == 1 and last["pageInfo"]["hasNextPage"] is False
    assert last["pageInfo"]["hasPreviousPage"] is True
    ids = [e["node"]["id"] for page in (first, second, last) for e in page["edges"]]
    assert ids == [e["node"]["id"] for e in exact["edges"]]
    assert [e["node"]["balanceAfter"]["amount"] for e in exact["edges"]] == ["100", "200", "300", "400", "500"]
    window = entries_page(api, WALLET_U1, first=10, **{"from": (T0 + timedelta(days=1)).isoformat(),
                                                       "to": (T0 + timedelta(days=3)).isoformat()})
    assert len(window["edges"]) == 2
    zero = entries_page(api, WALLET_U1, first=0)
    assert zero["edges"] == [] and zero["pageInfo"]["hasNextPage"] is True


def test_bad_cursor_is_a_validation_error(api, conn):
    open_book(conn)
    errors = api.errors(ENTRIES, {"code": WALLET_U1, "after": "not-a-cursor"})
    assert errors[0]["extensions"] == {"code": "VALIDATION", "field": "after"}


def test_accounts_pagination_and_filters(api, conn):
    open_book(conn)
    query = """query($prefix: String, $holderId: String, $first: Int, $after: String) {
      accounts(prefix: $prefix, holderId: $holderId, first: $first, after: $after) {
        edges { cursor node { code } } pageInfo { hasNextPage endCursor } } }"""
    wallets = api.data(query, {"prefix": "liabilities:wallets"})["accounts"]
    assert [e["node"]["code"] for e in wallets["edges"]] == ["liabilities:wallets:CAP", WALLET_U1, WALLET_U2]
    page = api.data(query, {"prefix": "liabilities:wallets", "first": 2})["accounts"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = api.data(query, {"prefix": "liabilities:wallets", "first": 2, "after": page["pageInfo"]["endCursor"]})
    assert [e["node"]["code"] for e in rest["accounts"]["edges"]] == [WALLET_U2]
    assert rest["accounts"]["pageInfo"]["hasNextPage"] is False
    assert [e["node"]["code"] for e in api.data(query, {"holderId": "M1"})["accounts"]["edges"]] == [MERCHANT_M1]
    assert api.data(query, {"prefix": "nothing:here"})["accounts"]["edges"] == []


def test_balance_as_of_and_known_at(api, conn):
    open_book(conn)
    daily_top_ups(conn, WALLET_U1, 3, amount=1000)  # effective T0, T0+1d, T0+2d
    recorded_before_backdating = api.data('{ account(code: "liabilities:wallets:U1") { createdAt } }')
    time.sleep(0.01)
    known = datetime.now(UTC)
    time.sleep(0.01)
    # Learnt later, effective on the first day: changes "as of" history but not what was known.
    post(conn, [Transfer("late", "wallet.top_up", [Leg(BANK, Side.DEBIT, 5), Leg(WALLET_U1, Side.CREDIT, 5)],
                         effective_at=T0 + timedelta(hours=1))])
    query = """query($asOf: DateTime, $knownAt: DateTime) { account(code: "liabilities:wallets:U1") {
        balance(asOf: $asOf, knownAt: $knownAt) { posted { amount } } } }"""

    def posted(**kw):
        return api.data(query, kw)["account"]["balance"]["posted"]["amount"]

    assert recorded_before_backdating["account"]["createdAt"]
    assert posted() == "3005"
    assert posted(asOf=(T0 + timedelta(hours=12)).isoformat()) == "1005"
    assert posted(asOf=(T0 + timedelta(hours=12)).isoformat(), knownAt=known.isoformat()) == "1000"
    assert posted(knownAt=known.isoformat()) == "3000"
    assert posted(asOf=(T0 - timedelta(days=1)).isoformat()) == "0"


def test_statement_pages_and_totals(api, conn):
    open_book(conn)
    daily_top_ups(conn, WALLET_U1, 6, amount=100)
    post(conn, [spend(WALLET_U1, 30, "spend-1")])  # effective now: outside the period below
    period = {"code": WALLET_U1, "from": (T0 + timedelta(days=1)).isoformat(), "to": (T0 + timedelta(days=5)).isoformat()}
    whole = api.data(STATEMENT, {**period, "first": 10})["statement"]
    assert (whole["opening"]["amount"], whole["closing"]["amount"]) == ("100", "500")
    assert (whole["totalDebits"]["amount"], whole["totalCredits"]["amount"]) == ("0", "400")
    lines = whole["entries"]["edges"]
    assert [line["node"]["runningBalance"]["amount"] for line in lines] == ["200", "300", "400", "500"]
    assert whole["entries"]["pageInfo"]["hasNextPage"] is False
    first = api.data(STATEMENT, {**period, "first": 3})["statement"]
    assert first["entries"]["pageInfo"]["hasNextPage"] is True
    # Posted after the first page was cut: later pages still show the statement as it was.
    post(conn, [Transfer("backdated", "wallet.top_up", [Leg(BANK, Side.DEBIT, 7), Leg(WALLET_U1, Side.CREDIT, 7)],
                         effective_at=T0 + timedelta(days=4, hours=12))])
    last = api.data(STATEMENT, {**period, "first": 3, "after": first["entries"]["pageInfo"]["endCursor"]})["statement"]
    assert [line["node"]["runningBalance"]["amount"] for line in last["entries"]["edges"]] == ["500"]
    assert last["knownAt"] == first["knownAt"] and last["closing"]["amount"] == "500"
    assert last["entries"]["pageInfo"]["hasNextPage"] is False
    empty = api.data(STATEMENT, {"code": WALLET_U2, "from": period["from"], "to": period["to"]})["statement"]
    assert empty["entries"]["edges"] == [] and empty["opening"]["amount"] == "0" and empty["closing"]["amount"] == "0"


def test_statement_errors(api, conn):
    open_book(conn)
    missing = api.errors(STATEMENT, {"code": "liabilities:wallets:NOPE", "from": T0.isoformat(), "to": T0.isoformat()})
    assert missing[0]["extensions"]["code"] == "ACCOUNT_NOT_FOUND"
    backwards = api.errors(STATEMENT, {"code": WALLET_U1, "from": T0.isoformat(),
                                       "to": (T0 - timedelta(days=1)).isoformat()})
    assert backwards[0]["extensions"] == {"code": "VALIDATION", "field": "to"}


def test_a_forged_or_replayed_statement_cursor_is_a_validation_error(api, conn):
    """An edited running balance, or a cursor from another account's statement, is refused with
    a typed error on `after`: never a server error, never a page with the forged balance."""
    open_book(conn)
    daily_top_ups(conn, WALLET_U1, 4, amount=100)
    daily_top_ups(conn, WALLET_U2, 4, amount=100)
    period = {"from": T0.isoformat(), "to": (T0 + timedelta(days=4)).isoformat(), "first": 2}
    cursor = api.data(STATEMENT, {**period, "code": WALLET_U1})["statement"]["entries"]["pageInfo"]["endCursor"]
    payload, tag = cursor.split(".")
    position = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    position["balance"] = 100_000_000_000
    edited = base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":"), sort_keys=True).encode())
    for code, after in ((WALLET_U1, edited.decode().rstrip("=") + "." + tag), (WALLET_U2, cursor)):
        errors = api.errors(STATEMENT, {**period, "code": code, "after": after})
        assert errors[0]["extensions"] == {"code": "VALIDATION", "field": "after"}
    rest = api.data(STATEMENT, {**period, "code": WALLET_U1, "after": cursor})["statement"]["entries"]["edges"]
    assert [line["node"]["runningBalance"]["amount"] for line in rest] == ["300", "400"]


def test_transaction_query(api, conn):
    open_book(conn)
    tx_id = top_up(conn, WALLET_U1, 900, "t")
    query = """query($id: ID!) { transaction(id: $id) { id idempotencyKey kind isHold recordedAt effectiveAt
        reverses { id } reversedBy { id } hold { id } entries { account { code } amount { amount formatted } } } }"""
    tx = api.data(query, {"id": str(tx_id)})["transaction"]
    assert tx["idempotencyKey"] == "t" and tx["isHold"] is False and tx["reverses"] is None and tx["hold"] is None
    assert {e["amount"]["formatted"] for e in tx["entries"]} == {"9.00 CNY"}
    assert api.data(query, {"id": "987654"})["transaction"] is None
    assert api.errors(query, {"id": "x1"})[0]["extensions"]["field"] == "id"


def test_trial_balance_and_rollup(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 1000, "a")
    top_up(conn, WALLET_U2, 500, "b")
    post(conn, [spend(WALLET_U1, 200, "s")])
    trial = api.data("""{ trialBalance { balanced lines { accountCode account { code } debit { amount } credit { amount } }
        totals { currency debits { amount } credits { amount } balanced } } }""", role="auditor")["trialBalance"]
    assert trial["balanced"] is True
    assert trial["totals"] == [{"currency": "CNY", "debits": {"amount": "1500"}, "credits": {"amount": "1500"},
                                "balanced": True}, {"currency": "USD", "debits": {"amount": "0"},
                                                    "credits": {"amount": "0"}, "balanced": True}]
    line = next(line for line in trial["lines"] if line["accountCode"] == WALLET_U1)
    assert line["account"]["code"] == WALLET_U1 and line["credit"]["amount"] == "800"
    rollup = api.data('{ rollup(prefix: "liabilities:wallets") { amount currency } }', role="auditor")["rollup"]
    assert rollup == [{"amount": "1300", "currency": "CNY"}]  # on the category's normal side
    past = api.data('{ rollup(prefix: "liabilities:wallets", asOf: "2020-01-01T00:00:00Z") { amount } }')["rollup"]
    assert past == [{"amount": "0"}]


@pytest.fixture
def counted(db_url):
    """The app with a statement counter on its pool's connections, and the counter."""
    from starlette.testclient import TestClient

    counter = StatementCounter()
    with TestClient(create_app(db_url, connection_kwargs=counter.connection_kwargs)) as client:
        yield Api(client, db_url), counter


def test_the_api_pool_uses_the_plain_cursor(api):
    with api.app.state.ledger.pool.connection() as connection:
        assert connection.cursor_factory is psycopg.Cursor
        assert connection.autocommit


def test_a_page_of_entries_costs_a_constant_number_of_queries(counted, conn):
    api, counter = counted
    open_book(conn)
    daily_top_ups(conn, WALLET_U1, 100)
    query = """query($first: Int) { account(code: "liabilities:wallets:U1") { code balance { posted { amount } }
        entries(first: $first) { edges { node { amount { amount }
          account { code holderId balance { available { amount } } }
          transaction { id kind entries { id account { code } } } } } } } }"""
    api.data(query, {"first": 1})  # warm: the token lookup is cached after the first request

    def statements(first):
        before = counter.count
        data = api.data(query, {"first": first})
        assert len(data["account"]["entries"]["edges"]) == first
        return counter.count - before

    ten, hundred = statements(10), statements(100)
    assert hundred == ten, (ten, hundred)
    assert 0 < hundred <= 6


@pytest.mark.parametrize("first", [501, -1])
def test_page_size_is_capped(api, conn, first):
    open_book(conn)
    errors = api.errors(ENTRIES, {"code": WALLET_U1, "first": first})
    assert errors[0]["extensions"] == {"code": "VALIDATION", "field": "first"}
    assert "500" in errors[0]["message"]
