"""transactions(filter) and accounts(filter) over HTTP: every filter, paging, what a holder sees,
and hostile filter values refused with typed errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from book import BANK, MERCHANT_M1, WALLET_U1, WALLET_U2, open_book

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.cursors import encode_cursor
from ledger.posting import Leg, Transfer, post_one

FIND = """query($filter: TransactionFilter, $first: Int, $after: String) {
  transactions(filter: $filter, first: $first, after: $after) {
    edges { cursor node { idempotencyKey kind metadata effectiveAt recordedAt entries { account { code } } } }
    pageInfo { hasNextPage endCursor } } }"""

ACCOUNTS = """query($filter: AccountFilter, $first: Int, $after: String) {
  accounts(filter: $filter, first: $first, after: $after) { edges { node { code metadata } }
                                                           pageInfo { hasNextPage endCursor } } }"""

DAY = datetime(2026, 3, 1, tzinfo=UTC)


def _book(conn):
    """Five transactions: kinds, accounts, metadata and effective days that tell them apart."""
    open_book(conn)
    specs = [("k1", "wallet.top_up", WALLET_U1, {"channel": "app", "order": {"id": 1}}, 0),
             ("k2", "wallet.top_up", WALLET_U2, {"channel": "web"}, 1),
             ("k3", "payment.direct", WALLET_U1, {"channel": "app"}, 2),
             ("k4", "wallet.top_up", WALLET_U1, {}, 3),
             ("k5", "payment.refund", MERCHANT_M1, {"channel": "app", "order": {"id": 2}}, 4)]
    for key, kind, account, metadata, days in specs:
        post_one(conn, Transfer(key, kind, [Leg(BANK, Side.DEBIT, 10), Leg(account, Side.CREDIT, 10)],
                                effective_at=DAY + timedelta(days=days), metadata=metadata))


def keys(api, filter_=None, role="admin", holder=None, **page):
    found = api.data(FIND, {"filter": filter_, **page}, role=role, holder=holder)["transactions"]
    return [edge["node"]["idempotencyKey"] for edge in found["edges"]]


@pytest.mark.parametrize(("filter_", "expected"), [
    (None, ["k5", "k4", "k3", "k2", "k1"]),
    ({"kind": "wallet.top_up"}, ["k4", "k2", "k1"]),
    ({"accountCode": WALLET_U1}, ["k4", "k3", "k1"]),
    ({"metadata": {"channel": "app"}}, ["k5", "k3", "k1"]),
    ({"metadata": {"order": {"id": 2}}}, ["k5"]),
    ({"metadata": {}}, ["k5", "k4", "k3", "k2", "k1"]),
    ({"effectiveFrom": "2026-03-02T00:00:00Z", "effectiveTo": "2026-03-04T00:00:00Z"}, ["k3", "k2"]),
    ({"effectiveFrom": "2026-03-04T00:00:00Z"}, ["k5", "k4"]),
    ({"effectiveTo": "2026-03-02T00:00:00+00:00"}, ["k1"]),
    ({"kind": "wallet.top_up", "accountCode": WALLET_U1, "metadata": {"channel": "app"}}, ["k1"]),
    ({"kind": "no.such_kind"}, []),
])
def test_each_filter_finds_what_it_names(api, conn, filter_, expected):
    _book(conn)
    assert keys(api, filter_) == expected


def test_recorded_range_finds_what_was_recorded_in_it(api, conn):
    _book(conn)
    recorded = {row[0]: row[1] for row in conn.execute("select idempotency_key, recorded_at from ledger.transactions")}
    start, end = recorded["k2"], recorded["k4"]
    assert keys(api, {"recordedFrom": start.isoformat(), "recordedTo": end.isoformat()}) == ["k3", "k2"]
    assert keys(api, {"recordedFrom": recorded["k5"].isoformat()}) == ["k5"]


def test_pages_follow_the_cursor_without_gaps_or_repeats(api, conn):
    _book(conn)
    seen, after = [], None
    while True:
        page = api.data(FIND, {"first": 2, "after": after})["transactions"]
        seen += [edge["node"]["idempotencyKey"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["k5", "k4", "k3", "k2", "k1"]
    with_account = api.data(FIND, {"filter": {"accountCode": WALLET_U1}, "first": 1})["transactions"]
    assert keys(api, {"accountCode": WALLET_U1}, after=with_account["pageInfo"]["endCursor"]) == ["k3", "k1"]


def test_a_time_range_pages_in_time_order_and_keeps_its_own_cursors(api, conn):
    _book(conn)
    ranged = {"effectiveFrom": "2026-03-01T00:00:00Z", "effectiveTo": "2026-03-05T00:00:00Z"}
    first = api.data(FIND, {"filter": ranged, "first": 2})["transactions"]
    assert [e["node"]["idempotencyKey"] for e in first["edges"]] == ["k4", "k3"]
    assert keys(api, ranged, after=first["pageInfo"]["endCursor"]) == ["k2", "k1"]
    # A cursor of the list by id is not one of the list by time, nor the other way round.
    by_id = api.data(FIND, {"first": 1})["transactions"]["pageInfo"]["endCursor"]
    for filter_, cursor in [(ranged, by_id), (None, first["pageInfo"]["endCursor"])]:
        errors = api.errors(FIND, {"filter": filter_, "after": cursor})
        assert errors[0]["extensions"]["code"] == "VALIDATION"
    # A forged time outside the calendar is refused like any forged cursor.
    for at in (-(2**62), 2**62):
        forged = encode_cursor({"at": at, "id": 1})
        assert api.errors(FIND, {"filter": ranged, "after": forged})[0]["extensions"]["code"] == "VALIDATION"


def test_a_holder_finds_only_transactions_touching_its_accounts(api, conn):
    _book(conn)
    assert keys(api, role="holder", holder="U1") == ["k4", "k3", "k1"]
    assert keys(api, {"kind": "wallet.top_up"}, role="holder", holder="U2") == ["k2"]
    assert keys(api, role="holder", holder="nobody") == []
    # Another holder's account is answered as one that does not exist.
    errors = api.errors(FIND, {"filter": {"accountCode": WALLET_U2}}, role="holder", holder="U1")
    assert errors[0]["extensions"]["code"] == "ACCOUNT_NOT_FOUND"
    legs = api.data(FIND, {"filter": {"accountCode": WALLET_U1}}, role="holder", holder="U1")["transactions"]
    assert {leg["account"]["code"] for e in legs["edges"] for leg in e["node"]["entries"]} == {WALLET_U1}


def _deep(levels):
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


HOSTILE = [
    ({"effectiveFrom": "2026-03-04T00:00:00Z", "effectiveTo": "2026-03-02T00:00:00Z"}, "effectiveFrom"),
    ({"recordedFrom": "2026-03-04T00:00:00Z", "recordedTo": "2026-03-04T00:00:00Z"}, "recordedFrom"),
    ({"effectiveFrom": "0001-01-01T00:00:00Z"}, None),
    ({"effectiveTo": "9999-12-31T23:59:59-12:00"}, None),
    ({"recordedTo": "10000-01-01T00:00:00Z"}, None),
    ({"metadata": {"big": "x" * 5000}}, "metadata"),
    ({"metadata": _deep(9)}, "metadata"),
    ({"metadata": _deep(40)}, None),
    ({"metadata": ["channel"]}, "metadata"),
    ({"metadata": "channel"}, "metadata"),
    ({"metadata": {"k": "nul\x00"}}, None),
    ({"metadata": {"nul\x00": 1}}, None),
    ({"kind": "DROP TABLE"}, "kind"),
    ({"kind": "a" * 101}, "kind"),
    ({"kind": "nul\x00"}, None),
    ({"accountCode": "nul\x00"}, None),
    ({"accountCode": "liabilities:wallets:nobody"}, None),
]


@pytest.mark.parametrize(("filter_", "field"), HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
def test_hostile_filters_are_typed_errors(api, conn, filter_, field):
    _book(conn)
    response = api.http(FIND, {"filter": filter_})
    assert response.status_code in (200, 400), response.text
    body = response.json()
    assert body.get("errors"), body
    codes = {error.get("extensions", {}).get("code") for error in body["errors"]}
    assert codes and None not in codes and "INTERNAL" not in codes, body
    if field is not None:
        assert body["errors"][0]["extensions"].get("field") == field, body


def test_a_huge_number_in_a_filter_is_compared_not_refused(api, conn):
    _book(conn)
    assert keys(api, {"metadata": {"n": 10 ** 4000}}) == []


@pytest.mark.parametrize("forged", ["", "x", "eyJpZCI6IngifQ", "eyJpZCI6MX0.tag", "eyJpZCI6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OX0",
                                    "eyJpZCI6MSwieCI6Mn0", "a" * 2000])
def test_a_forged_cursor_is_a_typed_error(api, conn, forged):
    _book(conn)
    errors = api.errors(FIND, {"after": forged})
    assert errors[0]["extensions"]["code"] == "VALIDATION"


def test_accounts_by_metadata(api, conn):
    open_book(conn)
    for code, holder, metadata in [("liabilities:wallets:G1", "G1", {"tier": "gold", "region": "east"}),
                                   ("liabilities:wallets:G2", "G2", {"tier": "gold"}),
                                   ("liabilities:wallets:S1", "S1", {"tier": "silver"})]:
        create_account(conn, NewAccount(code, code, AccountType.LIABILITY, "CNY", holder_id=holder, metadata=metadata))
    found = api.data(ACCOUNTS, {"filter": {"metadata": {"tier": "gold"}}})["accounts"]
    assert [e["node"]["code"] for e in found["edges"]] == ["liabilities:wallets:G1", "liabilities:wallets:G2"]
    page = api.data(ACCOUNTS, {"filter": {"metadata": {"tier": "gold"}}, "first": 1})["accounts"]
    rest = api.data(ACCOUNTS, {"filter": {"metadata": {"tier": "gold"}}, "after": page["pageInfo"]["endCursor"]}
                    )["accounts"]
    assert [e["node"]["code"] for e in rest["edges"]] == ["liabilities:wallets:G2"]
    own = api.data(ACCOUNTS, {"filter": {"metadata": {"tier": "gold"}}}, role="holder", holder="G2")["accounts"]
    assert [e["node"]["code"] for e in own["edges"]] == ["liabilities:wallets:G2"]
    none = api.data(ACCOUNTS, {"filter": {"metadata": {"tier": "gold"}}}, role="holder", holder="S1")["accounts"]
    assert none["edges"] == []


@pytest.mark.parametrize("metadata", [["tier"], _deep(9), {"big": "x" * 5000}, {"k": "nul\x00"}])
def test_hostile_account_filters_are_typed_errors(api, conn, metadata):
    open_book(conn)
    response = api.http(ACCOUNTS, {"filter": {"metadata": metadata}})
    assert response.status_code in (200, 400), response.text
    codes = {error.get("extensions", {}).get("code") for error in response.json()["errors"]}
    assert codes and None not in codes and "INTERNAL" not in codes
