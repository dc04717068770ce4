"""While the database cannot be reached, every answer is a typed, retryable JSON 503
(DATABASE_UNAVAILABLE): GraphQL, the REST routes and healthz; never a plain-text 500. A
mutation gets its typed result with the same code, which it may retry with the same key."""

from __future__ import annotations

import time

import psycopg
import pytest
from book import BANK, WALLET_U1, open_book
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from starlette.testclient import TestClient
from test_database_restart import terminate_backends
from test_graphql_mutations import POST, transfer
from test_serve import free_port

from graphql_api.app import create_app
from graphql_api.context import Limits
from ledger.tokens import create_token

DOWN = Limits(pool_size_min=1, pool_timeout_s=1)
BALANCE = """query($code: String!) { account(code: $code) { balance { posted { amount } } } }"""


def unavailable(response):
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_a_server_that_is_not_there(db_url):
    nowhere = make_conninfo(db_url, host="127.0.0.1", port=str(free_port()))
    with TestClient(create_app(nowhere, limits=DOWN), raise_server_exceptions=False) as client:
        health = unavailable(client.get("/healthz"))
        assert health == {"status": "unavailable", "code": "DATABASE_UNAVAILABLE", "retryable": True}
        headers = {"Authorization": "Bearer lct_anything"}
        body = unavailable(client.post("/graphql", json={"query": "{ trialBalance { balanced } }"}, headers=headers))
        assert body["errors"][0]["extensions"] == {"code": "DATABASE_UNAVAILABLE", "retryable": True}
        body = unavailable(client.get(f"/statements/{WALLET_U1}.csv?from=2026-01-01&to=2026-02-01", headers=headers))
        assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"


def test_a_database_that_goes_away_under_a_running_app(db_url, conn):
    open_book(conn)
    token = create_token(conn, "admin").token
    headers = {"Authorization": f"Bearer {token}"}
    name = sql.Identifier(conninfo_to_dict(db_url)["dbname"])
    admin_url = make_conninfo(db_url, dbname="postgres")
    with TestClient(create_app(db_url, limits=DOWN), raise_server_exceptions=False) as client:
        assert client.post("/graphql", json={"query": BALANCE, "variables": {"code": WALLET_U1}},
                           headers=headers).status_code == 200  # the token is now cached
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("alter database {} allow_connections false").format(name))
        try:
            terminate_backends(db_url)
            body = unavailable(client.post("/graphql", json={"query": BALANCE, "variables": {"code": WALLET_U1}},
                                           headers=headers))
            assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
            # A mutation answers with its typed result (HTTP 200, like every typed result): retryable.
            response = client.post("/graphql", json={
                "query": POST, "variables": transfer("while-down", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)])},
                headers=headers)
            assert response.status_code == 200
            posted = response.json()["data"]["postTransaction"]
            assert (posted["__typename"], posted["code"]) == ("OperationRefused", "DATABASE_UNAVAILABLE")
            assert unavailable(client.get("/healthz"))["code"] == "DATABASE_UNAVAILABLE"
        finally:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(sql.SQL("alter database {} allow_connections true").format(name))
        for _ in range(40):  # the client's retry, same key, while the pool reconnects (its own backoff)
            body = client.post("/graphql", json={
                "query": POST, "variables": transfer("while-down", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)])},
                headers=headers).json()
            if "data" not in body:  # the token's check itself found no connection yet: a 503
                assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE", body
                time.sleep(0.5)
                continue
            again = body["data"]["postTransaction"]
            if again["__typename"] == "PostedTransaction":
                break
            assert again["code"] == "DATABASE_UNAVAILABLE", again
            time.sleep(0.5)
        assert again["__typename"] == "PostedTransaction" and again["replayed"] is False


def test_a_socket_outlives_an_outage(db_url, conn):
    """An operation on an open socket while the database is away gets a retryable error
    message; the socket stays open and answers again once the database is back."""
    open_book(conn)
    token = create_token(conn, "auditor").token
    name = sql.Identifier(conninfo_to_dict(db_url)["dbname"])
    admin_url = make_conninfo(db_url, dbname="postgres")
    limits = Limits(pool_size_min=1, pool_timeout_s=1, token_cache_ttl_s=1)
    ask = {"query": BALANCE, "variables": {"code": WALLET_U1}}
    with TestClient(create_app(db_url, limits=limits)) as client:
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
            socket.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
            assert socket.receive_json()["type"] == "connection_ack"
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(sql.SQL("alter database {} allow_connections false").format(name))
            try:
                terminate_backends(db_url)
                time.sleep(1.2)  # the cached token is stale: checking it needs the database
                socket.send_json({"id": "1", "type": "subscribe", "payload": ask})
                refused = socket.receive_json()
                assert refused["type"] == "error", refused
                assert refused["payload"][0]["extensions"] == {"code": "DATABASE_UNAVAILABLE", "retryable": True}
            finally:
                with psycopg.connect(admin_url, autocommit=True) as admin:
                    admin.execute(sql.SQL("alter database {} allow_connections true").format(name))
            for attempt in range(20):
                socket.send_json({"id": f"again-{attempt}", "type": "subscribe", "payload": ask})
                answer = socket.receive_json()
                if answer["type"] == "next":
                    break
                time.sleep(0.5)  # the pool reconnects with its own backoff
            assert answer["payload"]["data"]["account"]["balance"]["posted"]["amount"] == "0"


def test_a_socket_opened_while_the_database_is_away_closes_with_try_again_later(db_url):
    from starlette.websockets import WebSocketDisconnect

    nowhere = make_conninfo(db_url, host="127.0.0.1", port=str(free_port()))
    with TestClient(create_app(nowhere, limits=DOWN)) as client:
        for headers, payload in (({"Authorization": "Bearer lct_anything"}, {}),
                                 ({}, {"authorization": "Bearer lct_anything"})):
            with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"],
                                          headers=headers) as socket:
                socket.send_json({"type": "connection_init", "payload": payload})
                with pytest.raises(WebSocketDisconnect) as closed:
                    socket.receive_json()
                assert closed.value.code == 1013
