"""setAccountStatus, setAccountLimits and the histories on Account, over HTTP: every transition,
the role rules, and every refusal typed with nothing written."""

from __future__ import annotations

import pytest
from book import BANK, CAPPED, WALLET_U1, WALLET_U2, open_book, top_up

ERROR = "... on LedgerError { __typename code message } ... on ValidationError { field }"

SET_STATUS = """mutation($input: SetAccountStatusInput!) { setAccountStatus(input: $input) { __typename
  ... on AccountStatusSet { changed account { code status } } %s } }""" % ERROR

SET_LIMITS = """mutation($input: SetAccountLimitsInput!) { setAccountLimits(input: $input) { __typename
  ... on AccountLimitsSet { changed account { code minBalance maxBalance } } %s } }""" % ERROR

HISTORY = """query($code: String!, $first: Int, $after: String) { account(code: $code) { status
  statusHistory(first: $first, after: $after) { edges { cursor node { status reason changedAt } }
                                                pageInfo { hasNextPage endCursor } }
  limitHistory { edges { node { minBalance maxBalance changedAt } } } } }"""

POST = """mutation($input: PostTransactionInput!) { postTransaction(input: $input) { __typename %s } }""" % ERROR


def set_status(api, code, status, reason="because", role="admin", holder=None):
    return api.data(SET_STATUS, {"input": {"accountCode": code, "status": status, "reason": reason}},
                    role=role, holder=holder)["setAccountStatus"]


def history(api, code, role="admin", holder=None, **page):
    return api.data(HISTORY, {"code": code, **page}, role=role, holder=holder)["account"]


def statuses(api, code):
    return [edge["node"]["status"] for edge in history(api, code)["statusHistory"]["edges"]]


def top_up_over_api(api, key, amount=5):
    return api.data(POST, {"input": {"idempotencyKey": key, "kind": "wallet.top_up", "entries": [
        {"accountCode": BANK, "side": "DEBIT", "amount": str(amount)},
        {"accountCode": WALLET_U1, "side": "CREDIT", "amount": str(amount)}]}}, role="operator")["postTransaction"]


TRANSITIONS = [(a, b) for a in ("ACTIVE", "FROZEN", "CLOSED") for b in ("ACTIVE", "FROZEN", "CLOSED")]


@pytest.mark.parametrize(("start", "target"), TRANSITIONS)
def test_every_transition_over_http(api, conn, start, target):
    open_book(conn)
    if start != "ACTIVE":
        assert set_status(api, WALLET_U1, start)["__typename"] == "AccountStatusSet"
    before = statuses(api, WALLET_U1)
    result = set_status(api, WALLET_U1, target, "next")
    if (start, target) == ("CLOSED", "FROZEN"):
        assert (result["__typename"], result["code"]) == ("StatusTransitionRefused", "STATUS_TRANSITION_REFUSED")
        assert statuses(api, WALLET_U1) == before
        return
    assert result == {"__typename": "AccountStatusSet", "changed": start != target,
                      "account": {"code": WALLET_U1, "status": target}}
    assert statuses(api, WALLET_U1) == ([target] if start != target else []) + before
    posted = top_up_over_api(api, f"after-{start}-{target}")["__typename"]
    assert posted == ("PostedTransaction" if target == "ACTIVE" else "AccountFrozen")


def test_closing_a_funded_account_is_refused_and_writes_nothing(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    before = statuses(api, WALLET_U1)
    result = set_status(api, WALLET_U1, "CLOSED")
    assert (result["__typename"], result["code"]) == ("AccountNotEmpty", "ACCOUNT_NOT_EMPTY")
    assert "posted balance is 100" in result["message"]
    assert statuses(api, WALLET_U1) == before and history(api, WALLET_U1)["status"] == "ACTIVE"


@pytest.mark.parametrize(("role", "holder"), [("operator", None), ("auditor", None), ("holder", "U1")])
def test_only_an_admin_changes_status_or_limits(api, conn, role, holder):
    open_book(conn)
    before = history(api, WALLET_U1)
    refused = set_status(api, WALLET_U1, "FROZEN", role=role, holder=holder)
    assert (refused["__typename"], refused["code"]) == ("Forbidden", "FORBIDDEN")
    refused = api.data(SET_LIMITS, {"input": {"accountCode": WALLET_U1, "minBalance": "-5"}},
                       role=role, holder=holder)["setAccountLimits"]
    assert refused["__typename"] == "Forbidden"
    assert history(api, WALLET_U1) == before


def test_a_holder_reads_its_own_history_and_no_one_elses(api, conn):
    open_book(conn)
    set_status(api, WALLET_U1, "FROZEN", "review")
    own = history(api, WALLET_U1, role="holder", holder="U1")
    assert [(e["node"]["status"], e["node"]["reason"]) for e in own["statusHistory"]["edges"]][0] == (
        "FROZEN", "review")
    assert api.data(HISTORY, {"code": WALLET_U1}, role="holder", holder="U2")["account"] is None


def test_limits_change_and_are_kept(api, conn):
    open_book(conn)
    top_up(conn, CAPPED, 800, "t1")
    result = api.data(SET_LIMITS, {"input": {"accountCode": CAPPED, "minBalance": "0", "maxBalance": "500"}}
                      )["setAccountLimits"]
    assert result == {"__typename": "AccountLimitsSet", "changed": True,
                      "account": {"code": CAPPED, "minBalance": "0", "maxBalance": "500"}}
    same = api.data(SET_LIMITS, {"input": {"accountCode": CAPPED, "minBalance": "0", "maxBalance": "500"}}
                    )["setAccountLimits"]
    assert same["changed"] is False
    limits = [(e["node"]["minBalance"], e["node"]["maxBalance"])
              for e in history(api, CAPPED)["limitHistory"]["edges"]]
    assert limits == [("0", "500"), ("0", "1000")]
    unbounded = api.data(SET_LIMITS, {"input": {"accountCode": CAPPED}})["setAccountLimits"]
    assert unbounded["account"]["minBalance"] is None and unbounded["account"]["maxBalance"] is None


@pytest.mark.parametrize(("variables", "typename", "field"), [
    ({"accountCode": CAPPED, "minBalance": "10", "maxBalance": "5"}, "ValidationError", "minBalance"),
    ({"accountCode": "liabilities:wallets:nobody", "minBalance": "0"}, "AccountNotFound", None),
])
def test_bad_limits_are_typed_refusals(api, conn, variables, typename, field):
    open_book(conn)
    before = history(api, CAPPED)
    result = api.data(SET_LIMITS, {"input": variables})["setAccountLimits"]
    assert result["__typename"] == typename
    if field:
        assert result["field"] == field
    assert history(api, CAPPED) == before


@pytest.mark.parametrize("variables", [
    {"accountCode": CAPPED, "minBalance": "9223372036854775808"},
    {"accountCode": CAPPED, "maxBalance": "1e3"},
    {"accountCode": CAPPED, "minBalance": 1.5},
])
def test_limits_past_64_bits_or_not_integers_are_refused_before_the_resolver(api, conn, variables):
    open_book(conn)
    before = history(api, CAPPED)
    body = api.query(SET_LIMITS, {"input": variables})
    assert body["errors"] and all(e["extensions"]["code"] != "INTERNAL" for e in body["errors"])
    assert history(api, CAPPED) == before


@pytest.mark.parametrize(("variables", "expected"), [
    ({"accountCode": WALLET_U1, "status": "FROZEN", "reason": ""}, "ValidationError"),
    ({"accountCode": WALLET_U1, "status": "FROZEN", "reason": "x" * 501}, "ValidationError"),
    ({"accountCode": "liabilities:wallets:nobody", "status": "FROZEN", "reason": "x"}, "AccountNotFound"),
    ({"accountCode": "x" * 5000, "status": "FROZEN", "reason": "x"}, "AccountNotFound"),
])
def test_bad_status_requests_are_typed_refusals(api, conn, variables, expected):
    open_book(conn)
    before = history(api, WALLET_U1)
    result = api.data(SET_STATUS, {"input": variables})["setAccountStatus"]
    assert result["__typename"] == expected
    assert history(api, WALLET_U1) == before


@pytest.mark.parametrize("variables", [
    {"accountCode": WALLET_U1, "status": "OPEN", "reason": "x"},
    {"accountCode": WALLET_U1, "status": "FROZEN", "reason": "nul \x00 here"},
    {"accountCode": WALLET_U1, "status": "FROZEN"},
])
def test_malformed_status_requests_are_refused_before_the_resolver(api, conn, variables):
    open_book(conn)
    before = history(api, WALLET_U1)
    body = api.query(SET_STATUS, {"input": variables})
    assert body["errors"] and all(e["extensions"]["code"] != "INTERNAL" for e in body["errors"])
    assert history(api, WALLET_U1) == before


def test_history_pages_and_a_forged_cursor_is_a_typed_error(api, conn):
    open_book(conn)
    for i in range(3):
        set_status(api, WALLET_U2, "FROZEN", f"f{i}")
        set_status(api, WALLET_U2, "ACTIVE", f"a{i}")
    first = history(api, WALLET_U2, first=4)["statusHistory"]
    assert first["pageInfo"]["hasNextPage"]
    rest = history(api, WALLET_U2, first=10, after=first["pageInfo"]["endCursor"])["statusHistory"]
    reasons = [e["node"]["reason"] for e in first["edges"] + rest["edges"]]
    assert reasons == ["a2", "f2", "a1", "f1", "a0", "f0", "created"]
    for forged in ["not-a-cursor", "eyJpZCI6IngifQ", "eyJpZCI6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OX0"]:
        errors = api.errors(HISTORY, {"code": WALLET_U2, "after": forged})
        assert errors[0]["extensions"]["code"] == "VALIDATION"
