"""Hostile queries get an error, not a busy server: depth, aliases, tokens, page sizes, the rows a
request may ask for in all, body size, statement timeout; unexpected errors are masked."""

from __future__ import annotations

import logging

import psycopg
from book import WALLET_U1, open_book
from graphql_client import Api
from starlette.testclient import TestClient

from graphql_api.app import create_app
from graphql_api.context import Limits
from ledger.accounts import AccountType, NewAccount, create_account


def test_query_depth_is_limited(api, conn):
    open_book(conn)
    nested = "code"
    for _ in range(5):
        nested = f"entries {{ edges {{ node {{ transaction {{ entries {{ account {{ {nested} }} }} }} }} }} }}"
    errors = api.errors(f'{{ account(code: "{WALLET_U1}") {{ {nested} }} }}')
    assert "exceeds maximum operation depth" in errors[0]["message"]


def test_aliases_are_limited(api, conn):
    aliases = " ".join(f'a{i}: account(code: "x{i}") {{ code }}' for i in range(31))
    errors = api.errors(f"{{ {aliases} }}")
    assert "aliases" in errors[0]["message"]


def test_tokens_are_limited(api):
    fields = " ".join("__typename" for _ in range(2100))
    errors = api.errors(f"{{ {fields} }}")
    assert "token" in errors[0]["message"].lower()


def test_rows_per_request_are_limited(api, conn):
    open_book(conn)
    for i in range(4):  # 10 accounts: 500 + 10 x 500 rows asked for, over the budget of 5,000
        create_account(conn, NewAccount(f"assets:bank:b{i}", f"Bank {i}", AccountType.ASSET, "CNY"))
    errors = api.errors("""{ accounts(first: 500) { edges { node {
        entries(first: 500) { edges { node { id } } } } } } }""")
    assert errors[0]["extensions"] == {"code": "VALIDATION", "field": "first"}


def test_request_body_size_is_limited(api):
    body = '{"query": "{ __typename }", "variables": {"pad": "' + "x" * 200_000 + '"}}'
    response = api.client.post("/graphql", content=body, headers={
        "Authorization": f"Bearer {api.token()}", "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"


def test_statement_timeout(db_url, conn):
    open_book(conn)
    with TestClient(create_app(db_url, limits=Limits(statement_timeout_ms=200))) as client:
        api = Api(client, db_url)
        api.data("{ __typename }")  # the token is looked up (and cached) before the lock is taken
        with psycopg.connect(db_url) as locker:
            locker.execute("lock table ledger.accounts in access exclusive mode")
            errors = api.errors(f'{{ account(code: "{WALLET_U1}") {{ code }} }}')
            locker.rollback()
        assert errors[0]["extensions"]["code"] == "STATEMENT_TIMEOUT"
        assert "200 ms" in errors[0]["message"]
        assert api.data(f'{{ account(code: "{WALLET_U1}") {{ code }} }}')["account"]["code"] == WALLET_U1


def test_unexpected_errors_are_masked_and_logged(api, conn, monkeypatch, caplog):
    import graphql_api.core.queries as queries

    def broken(*args, **kwargs):
        raise RuntimeError("secret connection detail")

    monkeypatch.setattr(queries.core_balances, "rollup", broken)
    with caplog.at_level(logging.ERROR, logger="graphql_api"):
        errors = api.errors('{ rollup(prefix: "assets") { amount } }')
    error = errors[0]
    assert "secret" not in str(errors)
    assert error["extensions"]["code"] == "INTERNAL"
    request_id = error["extensions"]["requestId"]
    assert request_id in error["message"]
    assert any(request_id in record.getMessage() and record.exc_info for record in caplog.records)
