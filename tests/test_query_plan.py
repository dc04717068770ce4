"""Compiled plans for plain queries (graphql_api/query_plan.py) answer exactly as graphql-core
does: every document below is sent with plans on and off, over HTTP, and the two responses must
be the same bytes (data, errors, codes, locations, paths, status). Documents a plan does not
cover (lists, fragments, directives, __typename, mutations) must have none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from book import BANK, MERCHANT_M1, USD_BANK, WALLET_U1, WALLET_U2, open_book, spend, top_up

from ledger.posting import Reverse, post_one

ACCOUNT_FIELDS = """id code name type normalSide currency holderId status minBalance maxBalance metadata createdAt"""
MONEY = "amount currency formatted"

BALANCE = "query Balance($c: String!) { account(code: $c) { balance { posted { amount } available { amount } } } }"
FULL_ACCOUNT = f"""query Full($c: String!) {{ a: account(code: $c) {{ {ACCOUNT_FIELDS}
    balance {{ posted {{ {MONEY} }} pending {{ {MONEY} }} available {{ {MONEY} }} }} }} }}"""
AS_OF = """query AsOf($c: String!, $at: DateTime, $known: DateTime) { account(code: $c) { code
    now: balance { posted { amount } } then: balance(asOf: $at, knownAt: $known) { posted { amount } available { amount } } } }"""
TWO_ROOTS = f"""{{ u1: account(code: "{WALLET_U1}") {{ code balance {{ posted {{ amount }} }} }}
    u2: account(code: "{WALLET_U2}") {{ code balance {{ posted {{ amount }} }} }}
    nobody: account(code: "liabilities:wallets:NOBODY") {{ code }} }}"""
TRANSACTION = """query Tx($id: ID!) { transaction(id: $id) { id idempotencyKey kind description effectiveAt recordedAt
    metadata isHold expiresAt reverses { id kind } reversedBy { id kind reverses { id } } hold { id status } } }"""
TRIAL = "query Trial { trialBalance { balanced asOf } }"
STATEMENT = """query St($c: String!, $from: DateTime!, $to: DateTime!) { statement(accountCode: $c, from: $from, to: $to) {
    account { code } opening { amount formatted } closing { amount } totalDebits { amount } totalCredits { amount } } }"""

# Not plain: each must be left to graphql-core.
NOT_PLAIN = {
    "a list": "query L($c: String!) { account(code: $c) { entries(first: 2) { edges { node { id } } } } }",
    "a fragment": "query F($c: String!) { account(code: $c) { ...A } } fragment A on Account { code }",
    "an inline fragment": "query I($c: String!) { account(code: $c) { ... on Account { code } } }",
    "a directive": "query D($c: String!, $y: Boolean!) { account(code: $c) { code @include(if: $y) } }",
    "__typename": "query T($c: String!) { account(code: $c) { __typename code } }",
    "a repeated key": "query R($c: String!) { account(code: $c) { code code } }",
    "a mutation": """mutation M($input: PostTransactionInput!) { postTransaction(input: $input) { __typename } }""",
}


@pytest.fixture
def book(conn):
    open_book(conn)
    first = top_up(conn, WALLET_U1, 12_345, "u1")
    top_up(conn, WALLET_U2, 30, "u2")
    reversal = post_one(conn, Reverse("reverse-u1", first)).transaction_id
    top_up(conn, WALLET_U1, 12_345, "u1-again")
    post_one(conn, spend(WALLET_U1, 45, "pay"))
    return {"first": str(first), "reversal": str(reversal)}


def both(api, query, variables=None, *, role="admin", holder=None):
    """The response with plans on, then off: (status, body bytes) each."""
    direct = api.app.state.direct
    answers = []
    for enabled in (True, False):
        direct.plans_enabled = enabled
        planned = direct.planned
        try:
            response = api.http(query, variables, role=role, holder=holder)
        finally:
            direct.plans_enabled = True
        answers.append((response.status_code, response.content))
        # A plan answers every request that has no error, and none that has one.
        assert (direct.planned > planned) == (enabled and b'"errors"' not in response.content), response.content
    return answers


def plan_of(api, query):
    prepared = api.app.state.direct.documents.get(query)
    assert prepared is not None, "the document should be prepared"
    return next(iter(prepared.plans.values()), None)


def cases(book):
    now = datetime.now(UTC)
    return [
        (BALANCE, {"c": WALLET_U1}, "admin", None),
        (BALANCE, {"c": WALLET_U2}, "holder", "U2"),
        (BALANCE, {"c": WALLET_U1}, "holder", "U2"),  # not the holder's: null
        (BALANCE, {"c": "liabilities:wallets:NOBODY"}, "admin", None),
        (BALANCE, {"c": 5}, "admin", None),  # a variable of the wrong type
        (BALANCE, {}, "admin", None),  # a variable missing
        (BALANCE, {"c": None}, "admin", None),  # null for a non-null variable
        (FULL_ACCOUNT, {"c": WALLET_U1}, "admin", None),
        (FULL_ACCOUNT, {"c": MERCHANT_M1}, "operator", None),
        (FULL_ACCOUNT, {"c": USD_BANK}, "auditor", None),
        (FULL_ACCOUNT, {"c": BANK}, "admin", None),
        (AS_OF, {"c": WALLET_U1, "at": (now - timedelta(hours=1)).isoformat(), "known": None}, "admin", None),
        (AS_OF, {"c": WALLET_U1, "at": None, "known": now.isoformat()}, "admin", None),
        (AS_OF, {"c": WALLET_U1, "at": "yesterday", "known": None}, "admin", None),  # not a DateTime
        (AS_OF, {"c": WALLET_U1, "at": "2026-01-01T00:00:00", "known": None}, "admin", None),  # no offset
        (AS_OF, {"c": WALLET_U1, "at": "9999-12-31T00:00:00+00:00", "known": None}, "admin", None),
        (TWO_ROOTS, None, "admin", None),
        (TWO_ROOTS, None, "holder", "U1"),
        (TRANSACTION, {"id": book["first"]}, "admin", None),
        (TRANSACTION, {"id": book["reversal"]}, "auditor", None),
        (TRANSACTION, {"id": book["first"]}, "holder", "U1"),
        (TRANSACTION, {"id": book["first"]}, "holder", "U2"),  # not the holder's: null
        (TRANSACTION, {"id": "999999"}, "admin", None),
        (TRANSACTION, {"id": "abc"}, "admin", None),  # a resolver's typed error
        (TRANSACTION, {"id": "99999999999999999999"}, "admin", None),
        (TRIAL, None, "admin", None),
        (TRIAL, None, "holder", "U1"),  # Forbidden, raised by the resolver
    ]


def statement_cases():
    now = datetime.now(UTC)
    return [
        (STATEMENT, {"c": WALLET_U1, "from": (now - timedelta(days=1)).isoformat(),
                     "to": (now + timedelta(days=1)).isoformat()}, "admin", None),
        (STATEMENT, {"c": "liabilities:wallets:NOBODY", "from": (now - timedelta(days=1)).isoformat(),
                     "to": (now + timedelta(days=1)).isoformat()}, "admin", None),  # ACCOUNT_NOT_FOUND
        (STATEMENT, {"c": WALLET_U1, "from": (now + timedelta(days=1)).isoformat(),
                     "to": (now - timedelta(days=1)).isoformat()}, "admin", None),  # an empty period refused
    ]


def test_plain_queries_answer_as_graphql_core_does(api, book):
    for query, variables, role, holder in cases(book):
        planned, generic = both(api, query, variables, role=role, holder=holder)
        assert planned == generic, (query, variables, role)
        assert plan_of(api, query) is not None, query


def test_statement_queries_answer_as_graphql_core_does(api, book):
    """The statement's resolver reads which of its fields were selected (strawberry's
    `selected_fields`, from the resolve info the plan builds) and raises typed errors."""
    codes = set()
    for query, variables, role, holder in statement_cases():
        planned, generic = both(api, query, variables, role=role, holder=holder)
        assert planned == generic, (query, variables, role)
        codes |= {error["extensions"]["code"] for error in api.query(query, variables).get("errors", [])}
    assert plan_of(api, STATEMENT) is not None
    assert {"ACCOUNT_NOT_FOUND", "VALIDATION"} <= codes, codes


def test_the_answers_compared_hold_data_and_errors_alike(api, book):
    """The comparison above means something: it covers data, nulls and errors of every kind."""
    bodies = [api.http(query, variables, role=role, holder=holder).json() for query, variables, role, holder in cases(book)]
    codes = {error["extensions"]["code"] for body in bodies for error in body.get("errors", [])}
    assert {"BAD_USER_INPUT", "VALIDATION", "FORBIDDEN"} <= codes, codes
    assert bodies[0]["data"]["account"]["balance"]["posted"]["amount"] == "12300"
    assert bodies[2] == {"data": {"account": None}}
    assert bodies[18]["data"]["transaction"]["reversedBy"]["reverses"]["id"] == book["first"]


@pytest.mark.parametrize("why", sorted(NOT_PLAIN))
def test_what_a_plan_does_not_cover_is_left_to_graphql_core(api, book, why):
    query = NOT_PLAIN[why]
    variables = {"c": WALLET_U1, "y": True} if "$y" in query else {"c": WALLET_U1}
    if why == "a mutation":
        variables = {"input": {"idempotencyKey": "plan-m", "kind": "wallet.top_up", "entries": [
            {"accountCode": BANK, "side": "DEBIT", "amount": "1"},
            {"accountCode": WALLET_U1, "side": "CREDIT", "amount": "1"}]}}
    body = api.query(query, variables)
    assert "errors" not in body, body
    assert plan_of(api, query) is None


def test_a_plan_that_stops_leaves_no_trace_in_the_answer(api, book):
    """A resolver error stops the plan after other fields ran: graphql-core answers from the start
    on a fresh context, so the fields that had run are neither lost nor counted twice."""
    query = f"""query Mixed($id: ID!) {{ ok: account(code: "{WALLET_U2}") {{ balance {{ posted {{ amount }} }} }}
        bad: transaction(id: $id) {{ id }} }}"""
    planned, generic = both(api, query, {"id": "not-an-id"})
    assert planned == generic
    body = api.query(query, {"id": "not-an-id"})
    assert body["data"] == {"ok": {"balance": {"posted": {"amount": "30"}}}, "bad": None}
    assert body["errors"][0]["path"] == ["bad"] and body["errors"][0]["extensions"]["code"] == "VALIDATION"
