"""A statement is reproducible: cut at the journal horizon, read in one snapshot, asked again with
its knownAt it is the same, whatever commits meanwhile and in whatever order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.errors import KnownAtNotFinal
from ledger.posting import Leg, Transfer, post
from ledger.statement_cut import journal_horizon, read_statement
from ledger.statement_export import cut_statement, to_csv, to_json_bytes, to_pdf

BANK = "assets:bank:a"
BANK_B = "assets:bank:b"   # OTHER's bank: a writer on OTHER never waits for one on WALLET
WALLET = "liabilities:wallets:u1"
OTHER = "liabilities:wallets:u2"
PERIOD = {"from": "2026-10-01T00:00:00+00:00", "to": "2026-11-01T00:00:00+00:00"}
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)

STATEMENT = """query($code: String!, $from: DateTime!, $to: DateTime!, $knownAt: DateTime, $first: Int,
                     $after: String) {
  statement(accountCode: $code, from: $from, to: $to, knownAt: $knownAt, first: $first, after: $after) {
    knownAt opening { amount } closing { amount } totalDebits { amount } totalCredits { amount }
    entries { edges { cursor node { runningBalance { amount } entry { side amount { amount } } } }
              pageInfo { hasNextPage endCursor } }
  }
}"""

DIFFERENCES = """query($code: String!, $from: DateTime!, $to: DateTime!, $knownAt: DateTime!) {
  statementDifferences(accountCode: $code, from: $from, to: $to, knownAt: $knownAt) {
    closingAsKnown { amount } closingNow { amount } changes { transactionId affects amount { amount } } } }"""


def _setup(conn):
    for bank in (BANK, BANK_B):
        create_account(conn, NewAccount(bank, "Bank", AccountType.ASSET, "CNY"))
    for code, holder in ((WALLET, "u1"), (OTHER, "u2")):
        create_account(conn, NewAccount(code, f"Wallet {holder}", AccountType.LIABILITY, "CNY", holder_id=holder))
    post(conn, [_top_up("opening", WALLET, 10_000, -2), _top_up("in1", WALLET, 2_500, 3),
                _top_up("in2", WALLET, 40, 9)])


def _top_up(key, code, amount, day):
    at = datetime(2026, 10, day, 12, tzinfo=UTC) if day > 0 else START + timedelta(days=day)
    bank = BANK if code == WALLET else BANK_B
    return Transfer(key, "wallet.top_up", [Leg(bank, Side.DEBIT, amount), Leg(code, Side.CREDIT, amount)],
                    effective_at=at)


def test_graphql_statement_reproduces_around_an_out_of_order_commit(api, conn, db_url):
    """A writer opened first records into the period, another commits meanwhile, the first commits
    last with the earlier recorded time: the statement asked while it was in flight and the same
    statement asked again with its knownAt are identical, and the differences list the posting."""
    _setup(conn)
    with psycopg.connect(db_url, autocommit=True) as older, psycopg.connect(db_url, autocommit=True) as newer:
        with older.transaction():
            [late] = post(older, [_top_up("late", WALLET, 700, 5)])          # recorded first, committed last
            post(newer, [_top_up("meanwhile", OTHER, 1, 5)])                 # commits at once
            late_recorded = older.execute("select recorded_at from ledger.transactions where id = %s",
                                          (late.transaction_id,)).fetchone()[0]
            during = api.data(STATEMENT, {"code": WALLET, **PERIOD}, role="auditor")["statement"]
            assert datetime.fromisoformat(during["knownAt"]) < late_recorded
    again = api.data(STATEMENT, {"code": WALLET, **PERIOD, "knownAt": during["knownAt"]}, role="auditor")
    assert again["statement"] == during
    assert during["closing"]["amount"] == "12540" and len(during["entries"]["edges"]) == 2
    diff = api.data(DIFFERENCES, {"code": WALLET, **PERIOD, "knownAt": during["knownAt"]}, role="auditor")
    assert diff["statementDifferences"] == {
        "closingAsKnown": {"amount": "12540"}, "closingNow": {"amount": "13240"},
        "changes": [{"transactionId": str(late.transaction_id), "affects": "period", "amount": {"amount": "700"}}]}
    now = api.data(STATEMENT, {"code": WALLET, **PERIOD}, role="auditor")["statement"]
    assert now["closing"]["amount"] == "13240"


def test_later_pages_follow_the_first_pages_cut(api, conn, db_url):
    _setup(conn)
    first = api.data(STATEMENT, {"code": WALLET, **PERIOD, "first": 1}, role="auditor")["statement"]
    post(conn, [_top_up("backdated", WALLET, 5, 4)])
    cursor = first["entries"]["pageInfo"]["endCursor"]
    rest = api.data(STATEMENT, {"code": WALLET, **PERIOD, "first": 5, "after": cursor}, role="auditor")["statement"]
    assert rest["knownAt"] == first["knownAt"]
    assert {k: rest[k] for k in ("opening", "closing", "totalCredits")} == \
        {k: first[k] for k in ("opening", "closing", "totalCredits")}
    assert [e["node"]["runningBalance"]["amount"] for e in rest["entries"]["edges"]] == ["12540"]


def test_a_cursor_pages_only_its_own_cut(api, conn):
    """A knownAt sent with a cursor is the cursor's cut or a typed refusal: a page of another cut
    would not continue the page before it."""
    _setup(conn)
    first = api.data(STATEMENT, {"code": WALLET, **PERIOD, "first": 1}, role="auditor")["statement"]
    cursor = first["entries"]["pageInfo"]["endCursor"]
    same = api.data(STATEMENT, {"code": WALLET, **PERIOD, "first": 5, "after": cursor, "knownAt": first["knownAt"]},
                    role="auditor")["statement"]
    assert same["knownAt"] == first["knownAt"] and len(same["entries"]["edges"]) == 1
    earlier = (datetime.fromisoformat(first["knownAt"]) - timedelta(microseconds=1)).isoformat()
    errors = api.errors(STATEMENT, {"code": WALLET, **PERIOD, "first": 5, "after": cursor, "knownAt": earlier},
                        role="auditor")
    assert errors[0]["extensions"] == {"code": "VALIDATION", "field": "knownAt"}, errors
    assert "cursor" in errors[0]["message"]


def test_an_empty_page_ends_where_it_began(api, conn):
    """first: 0 reads no entry; its endCursor is the cursor it was given, so a client following
    hasNextPage goes on from there instead of starting the statement over."""
    _setup(conn)
    first = api.data(STATEMENT, {"code": WALLET, **PERIOD, "first": 1}, role="auditor")["statement"]
    cursor = first["entries"]["pageInfo"]["endCursor"]
    empty = api.data(STATEMENT, {"code": WALLET, **PERIOD, "first": 0, "after": cursor}, role="auditor")["statement"]
    assert empty["entries"]["edges"] == []
    assert empty["entries"]["pageInfo"] == {"hasNextPage": True, "endCursor": cursor}
    rest = api.data(STATEMENT, {"code": WALLET, **PERIOD, "first": 5, "after": empty["entries"]["pageInfo"]["endCursor"]},
                    role="auditor")["statement"]
    assert [e["node"]["runningBalance"]["amount"] for e in rest["entries"]["edges"]] == ["12540"]


def test_a_known_at_past_the_horizon_is_refused(api, conn):
    _setup(conn)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    errors = api.errors(STATEMENT, {"code": WALLET, **PERIOD, "knownAt": future}, role="auditor")
    assert errors[0]["extensions"] == {"code": "KNOWN_AT_NOT_FINAL", "field": "knownAt"}
    assert "journal horizon" in errors[0]["message"] and future in errors[0]["message"]
    horizon, _ = journal_horizon(conn)
    with pytest.raises(KnownAtNotFinal) as refused:
        read_statement(conn, 1, "CNY", START, END, first=10, known_at=horizon + timedelta(seconds=1))
    assert refused.value.field == "knownAt"
    assert horizon <= datetime.fromisoformat(refused.value.details["horizon"]) < horizon + timedelta(seconds=1)
    response = api.client.get(f"/statements/{WALLET}.json", params={**PERIOD, "knownAt": future},
                              headers={"Authorization": f"Bearer {api.token('auditor')}"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "KNOWN_AT_NOT_FINAL"


def test_exported_files_carry_the_cuts_position_not_the_fetchs(conn, db_url):
    """The JSON and PDF name the journal position of the cut: asked again with its knownAt after
    more of the journal has committed (moving the horizon on), the files are byte for byte the
    same; a later backdated posting changes only what is said about now."""
    _setup(conn)
    with psycopg.connect(db_url, autocommit=True) as writer:
        with writer.transaction():
            post(writer, [_top_up("in-flight", OTHER, 9, 6)])
            original = cut_statement(conn, WALLET, START, END)
    post(conn, [_top_up(f"elsewhere{n}", OTHER, n + 1, 7) for n in range(3)])
    assert journal_horizon(conn)[1] > original.position > 0
    again = cut_statement(conn, WALLET, START, END, known_at=original.known_at)
    assert to_json_bytes(again) == to_json_bytes(original)
    assert to_pdf(again) == to_pdf(original) and to_csv(again) == to_csv(original)
    post(conn, [_top_up("backdated", WALLET, 3, 2)])
    later = json.loads(to_json_bytes(cut_statement(conn, WALLET, START, END, known_at=original.known_at)))
    assert [c["amount"]["minor"] for c in later.pop("laterChanges")] == ["3"]
    assert later.pop("closingNow")["minor"] == "12543"
    first = json.loads(to_json_bytes(original))
    del first["laterChanges"], first["closingNow"]
    assert later == first


def test_a_statement_reads_and_charges_its_page_only_when_its_entries_are_asked_for(api, conn):
    _setup(conn)
    args = f'accountCode: "{WALLET}", from: "{PERIOD["from"]}", to: "{PERIOD["to"]}", first: 500'
    totals = "{ " + " ".join(f"s{n}: statement({args}) {{ closing {{ amount }} }}" for n in range(11)) + " }"
    assert {s["closing"]["amount"] for s in api.data(totals, role="auditor").values()} == {"12540"}
    pages = "{ " + " ".join(f"s{n}: statement({args}) {{ entries {{ pageInfo {{ hasNextPage }} }} }}"
                            for n in range(11)) + " }"
    assert api.errors(pages, role="auditor")[0]["extensions"] == {"code": "VALIDATION", "field": "first"}
