"""Prepared documents and persisted queries (graphql_api/direct.py, prepared.py, persisted.py),
through HTTP: a document is parsed and validated once, every request still gets its own
variables, caller, limits and typed errors; a client may send a document's sha256 instead of it."""

from __future__ import annotations

import hashlib
import json

import pytest
from book import BANK, WALLET_U1, WALLET_U2, open_book, top_up
from test_graphql_mutations import POST, transfer

BALANCE = "query Balance($c: String!) { account(code: $c) { code balance { posted { amount } } } }"


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def send(api, body, role="admin", holder=None):
    # json.dumps escapes what is not ASCII, so a lone surrogate can be sent too.
    return api.client.post("/graphql", content=json.dumps(body), headers={
        "Authorization": f"Bearer {api.token(role, holder)}", "Content-Type": "application/json"})


def persisted(text, digest=None, **body):
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest or sha256(text)}}, **body}


def posted_count(conn, key):
    return conn.execute("select count(*) from ledger.transactions where idempotency_key = %s", (key,)).fetchone()[0]


def test_a_document_is_prepared_once_and_each_request_gets_its_own_variables(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 70, "u1")
    top_up(conn, WALLET_U2, 30, "u2")
    documents = api.app.state.direct.documents
    before = documents.prepared
    for _ in range(2):
        for code, amount in ((WALLET_U1, "70"), (WALLET_U2, "30")):
            account = api.data(BALANCE, {"c": code})["account"]
            assert account == {"code": code, "balance": {"posted": {"amount": amount}}}
    assert documents.prepared == before + 1 and BALANCE in documents
    # A read after a post sees it: documents are cached, results never are.
    assert api.data(POST, transfer("t1", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)]))
    assert api.data(BALANCE, {"c": WALLET_U1})["account"]["balance"]["posted"]["amount"] == "75"
    # A variable of the wrong type is refused for this request, with the document cached.
    errors = api.errors(BALANCE, {"c": 5})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    errors = api.errors(BALANCE, {})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_cached_document_still_checks_the_caller(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 70, "u1")
    assert api.data(BALANCE, {"c": WALLET_U1})["account"]["code"] == WALLET_U1  # cached by an admin
    assert api.data(BALANCE, {"c": WALLET_U1}, role="holder", holder="U2")["account"] is None
    assert api.data(BALANCE, {"c": WALLET_U1}, role="holder", holder="U1")["account"]["code"] == WALLET_U1
    no_token = api.client.post("/graphql", json={"query": BALANCE, "variables": {"c": WALLET_U1}})
    assert no_token.status_code == 401
    revoked = api.client.post("/graphql", json={"query": BALANCE, "variables": {"c": WALLET_U1}},
                              headers={"Authorization": "Bearer not-a-token"})
    assert revoked.status_code == 401
    api.data(POST, transfer("by-operator", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)]), role="operator")
    refused = api.data(POST, transfer("by-auditor", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)]),
                       role="auditor")["postTransaction"]
    assert (refused["__typename"], refused["code"]) == ("Forbidden", "FORBIDDEN")
    assert posted_count(conn, "by-auditor") == 0


def test_documents_past_a_limit_are_refused_every_time_and_never_cached(api, conn):
    open_book(conn)
    nested = "code"
    for _ in range(5):
        nested = f"entries {{ edges {{ node {{ transaction {{ entries {{ account {{ {nested} }} }} }} }} }} }}"
    deep = f'{{ account(code: "{WALLET_U1}") {{ {nested} }} }}'
    aliases = "{ " + " ".join(f'a{i}: account(code: "x{i}") {{ code }}' for i in range(31)) + " }"
    repeated = "{ " + " ".join("account(code: \"x\") { code }" for _ in range(11)) + " }"
    nul = '{ account(code: "a\\u0000b") { code } }'
    documents = api.app.state.direct.documents
    for _ in range(2):
        assert "exceeds maximum operation depth" in api.errors(deep)[0]["message"]
        assert "aliases" in api.errors(aliases)[0]["message"]
        assert api.errors(repeated)[0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert api.errors(nul)[0]["extensions"]["code"] == "VALIDATION"
        assert api.errors("{ account(code: ") [0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert not any(text in documents for text in (deep, aliases, repeated, nul))


def test_a_cached_document_with_an_unstorable_variable_or_an_unknown_operation_is_refused(api, conn):
    open_book(conn)
    assert api.data(BALANCE, {"c": WALLET_U1})["account"]["code"] == WALLET_U1
    errors = api.errors(BALANCE, {"c": "liabilities:\u0000"})
    assert errors[0]["extensions"] == {"code": "VALIDATION", "field": "$c"}
    response = send(api, {"query": BALANCE, "variables": {"c": WALLET_U1}, "operationName": "Other"})
    assert response.status_code == 400, response.text  # as before the document was cached
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    key = "nul-in-a-key"
    body = transfer(key, [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)], description="bad\u0000")
    assert api.errors(POST, body, role="operator")[0]["extensions"]["code"] == "VALIDATION"
    assert posted_count(conn, key) == 0


def test_a_subscription_document_is_refused_over_http_every_time(api, conn):
    open_book(conn)
    subscription = "subscription($c: String!) { balanceChanged(accountCode: $c) { posted { amount } } }"
    for _ in range(2):
        response = send(api, {"query": subscription, "variables": {"c": WALLET_U1}})
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_a_persisted_query_runs_by_its_hash_once_the_server_knows_it(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 70, "u1")
    unknown = send(api, persisted(BALANCE, variables={"c": WALLET_U1}))
    assert unknown.status_code == 200
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = send(api, persisted(BALANCE, query=BALANCE, variables={"c": WALLET_U1}))
    assert registered.status_code == 200
    assert registered.json()["data"]["account"]["balance"]["posted"]["amount"] == "70"
    for code, amount in ((WALLET_U1, "70"), (WALLET_U2, "0")):
        by_hash = send(api, persisted(BALANCE, variables={"c": code}))
        assert by_hash.status_code == 200, by_hash.text
        assert by_hash.json()["data"]["account"]["balance"]["posted"]["amount"] == amount
    # The hash stands for the text, not for a caller: a holder sees only its own accounts.
    assert send(api, persisted(BALANCE, variables={"c": WALLET_U1}), role="holder", holder="U2").json() == {
        "data": {"account": None}}
    # The digest is accepted in capitals too.
    upper = send(api, persisted(BALANCE, sha256(BALANCE).upper(), variables={"c": WALLET_U1}))
    assert upper.json()["data"]["account"]["code"] == WALLET_U1


def test_a_persisted_mutation_posts_once_per_key(api, conn):
    open_book(conn)
    body = transfer("by-hash", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)])
    first = send(api, persisted(POST, query=POST, variables=body), role="operator").json()
    again = send(api, persisted(POST, variables=body), role="operator").json()
    assert first["data"]["postTransaction"]["replayed"] is False
    assert again["data"]["postTransaction"]["replayed"] is True
    assert posted_count(conn, "by-hash") == 1


def test_a_hash_that_is_not_the_texts_is_refused_and_runs_nothing(api, conn):
    open_book(conn)
    body = transfer("mismatch", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)])
    response = send(api, persisted(POST, sha256(BALANCE), query=POST, variables=body), role="operator")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "PERSISTED_QUERY_HASH_MISMATCH", "field": "extensions.persistedQuery.sha256Hash"}
    assert posted_count(conn, "mismatch") == 0
    # Nor did it teach the server that hash.
    assert send(api, persisted(BALANCE, variables={"c": WALLET_U1})).json()["errors"][0]["extensions"]["code"] == \
        "PERSISTED_QUERY_NOT_FOUND"


def test_a_document_that_does_not_validate_is_answered_and_not_remembered(api, conn):
    bad = "{ account(code: 5) { nope } }"
    response = send(api, persisted(bad, query=bad))
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert send(api, persisted(bad)).json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize("persisted_query, field", [
    ("abc", "extensions.persistedQuery"),
    ([1], "extensions.persistedQuery"),
    ({"version": 2, "sha256Hash": "0" * 64}, "extensions.persistedQuery.version"),
    ({"version": "1", "sha256Hash": "0" * 64}, "extensions.persistedQuery.version"),
    ({"version": True, "sha256Hash": "0" * 64}, "extensions.persistedQuery.version"),
    ({"sha256Hash": "0" * 64}, "extensions.persistedQuery.version"),
    ({"version": 1}, "extensions.persistedQuery.sha256Hash"),
    ({"version": 1, "sha256Hash": None}, "extensions.persistedQuery.sha256Hash"),
    ({"version": 1, "sha256Hash": 12345}, "extensions.persistedQuery.sha256Hash"),
    ({"version": 1, "sha256Hash": ["0" * 64]}, "extensions.persistedQuery.sha256Hash"),
    ({"version": 1, "sha256Hash": "0" * 63}, "extensions.persistedQuery.sha256Hash"),
    ({"version": 1, "sha256Hash": "0" * 65}, "extensions.persistedQuery.sha256Hash"),
    ({"version": 1, "sha256Hash": "g" * 64}, "extensions.persistedQuery.sha256Hash"),
    ({"version": 1, "sha256Hash": "0" * 64 + "\n"}, "extensions.persistedQuery.sha256Hash"),
    ({"version": 1, "sha256Hash": "0" * 63 + "\u0000"}, "extensions.persistedQuery.sha256Hash"),
    ({"version": 1, "sha256Hash": "\u0660" * 64}, "extensions.persistedQuery.sha256Hash"),  # Arabic-Indic zeros
    ({"version": 1, "sha256Hash": "../" * 30}, "extensions.persistedQuery.sha256Hash"),
    ({"version": 1, "sha256Hash": "\ud800" * 64}, "extensions.persistedQuery.sha256Hash"),
], ids=lambda value: repr(value)[:40])
def test_a_malformed_persisted_query_gets_a_typed_400(api, conn, persisted_query, field):
    open_book(conn)
    for query in (None, BALANCE):
        body = {"extensions": {"persistedQuery": persisted_query}, "variables": {"c": WALLET_U1}}
        if query is not None:
            body["query"] = query
        response = send(api, body)
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["extensions"] == {"code": "PERSISTED_QUERY_INVALID", "field": field}


def test_a_persisted_query_whose_text_is_not_a_string_gets_a_typed_400(api):
    response = send(api, persisted(BALANCE, query=5))
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"] == {"code": "PERSISTED_QUERY_INVALID", "field": "query"}


def test_responses_are_json_even_for_integers_past_64_bits(api):
    from graphql_api.json_codec import encode_json

    assert json.loads(encode_json({"a": 2**70, "b": "\u00e9", "c": [None, 1.5]})) == {"a": 2**70, "b": "\u00e9",
                                                                                    "c": [None, 1.5]}
    response = send(api, {"query": "query Q { __typename }"})
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": {"__typename": "Query"}}
    assert len(response.headers["x-request-id"]) == 16
