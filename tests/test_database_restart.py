"""A database restart, as the API sees it: every backend of the database terminated at once
(what a restart or failover does to pooled and listening connections). Requests after it
succeed, a subscription keeps going and pushes the balance posted after the disruption, a read
whose connection breaks under it is retried once and a write is not (it answers
DATABASE_UNAVAILABLE, which is retryable)."""

from __future__ import annotations

import psycopg
import pytest
from book import WALLET_U1, open_book, top_up
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from starlette.testclient import TestClient

from graphql_api.app import create_app
from graphql_api.context import AppState, Limits
from ledger.errors import DatabaseUnavailable
from ledger.tokens import create_token

BALANCE = """query($code: String!) { account(code: $code) { balance { posted { amount } } } }"""
SUBSCRIBE = """subscription($code: String!) { balanceChanged(accountCode: $code) { posted { amount } } }"""


def terminate_backends(db_url):
    """Ends every session on the test database but the caller's, as a restart would, and waits
    (up to 10 s each) until they are gone: the restart is over when the requests come."""
    name = conninfo_to_dict(db_url)["dbname"]
    with psycopg.connect(make_conninfo(db_url, dbname="postgres"), autocommit=True) as admin:
        ended = admin.execute("select count(pg_terminate_backend(pid, 10000)) from pg_stat_activity "
                              "where datname = %s and pid <> pg_backend_pid()", (name,)).fetchone()[0]
    return ended


def amount(body):
    assert not body.get("errors"), body
    return body["data"]["account"]["balance"]["posted"]["amount"]


def test_requests_after_a_restart_succeed(db_url, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 70, "before")
    token = create_token(conn, "auditor").token
    with TestClient(create_app(db_url, limits=Limits(pool_size_min=4, pool_size_max=4))) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(8):  # every pooled connection has been used
            response = client.post("/graphql", json={"query": BALANCE, "variables": {"code": WALLET_U1}},
                                   headers=headers)
            assert amount(response.json()) == "70"
        assert terminate_backends(db_url) >= 4
        for _ in range(12):
            response = client.post("/graphql", json={"query": BALANCE, "variables": {"code": WALLET_U1}},
                                   headers=headers)
            assert response.status_code == 200, response.text
            assert amount(response.json()) == "70"
        assert client.get("/healthz").json() == {"status": "ok"}


def test_a_subscription_resumes_and_pushes_the_balance_posted_after_a_restart(db_url, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "before")
    token = create_token(conn, "auditor").token
    with TestClient(create_app(db_url)) as client:
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
            socket.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
            assert socket.receive_json()["type"] == "connection_ack"
            socket.send_json({"id": "s", "type": "subscribe", "payload": {"query": SUBSCRIBE,
                                                                           "variables": {"code": WALLET_U1}}})
            assert socket.receive_json()["payload"]["data"]["balanceChanged"]["posted"]["amount"] == "100"
            assert terminate_backends(db_url) >= 1  # the listener's connection and the pool's
            conn = psycopg.connect(db_url, autocommit=True)
            top_up(conn, WALLET_U1, 23, "after the restart")
            seen = []
            while "123" not in seen:
                message = socket.receive_json()
                assert message["type"] == "next" and not message["payload"].get("errors"), message
                seen.append(message["payload"]["data"]["balanceChanged"]["posted"]["amount"])
                assert len(seen) <= 3, seen
            conn.close()


def test_a_read_is_retried_once_on_a_lost_connection_and_a_write_never(db_url):
    import anyio

    state = AppState.open(db_url, Limits(pool_size_min=1, pool_size_max=2))
    calls = []

    def dies_first_time(conn):
        calls.append(1)
        if len(calls) == 1:
            conn.execute("select pg_terminate_backend(pg_backend_pid())")
        return conn.execute("select 42").fetchone()[0]

    try:
        assert anyio.run(lambda: state.run(dies_first_time, retry_lost_connection=True)) == 42
        assert len(calls) == 2
        calls.clear()
        with pytest.raises(DatabaseUnavailable) as lost:
            anyio.run(lambda: state.run(dies_first_time))
        assert len(calls) == 1 and lost.value.retryable and lost.value.code == "DATABASE_UNAVAILABLE"
    finally:
        state.close()


class ConnectionBreaker:
    """Pool connection arguments whose next statement, once armed, first ends its own session:
    a connection lost mid-request."""

    def __init__(self):
        self.armed = False
        breaker = self

        class BreakingCursor(psycopg.Cursor):
            def execute(self, query, *args, **kwargs):
                if breaker.armed:
                    breaker.armed = False
                    super().execute("select pg_terminate_backend(pg_backend_pid())")
                return super().execute(query, *args, **kwargs)

        self.connection_kwargs = {"cursor_factory": BreakingCursor}


def test_over_http_a_query_is_retried_and_a_mutation_is_not(db_url, conn):
    from book import BANK
    from test_graphql_mutations import POST, transfer

    open_book(conn)
    top_up(conn, WALLET_U1, 70, "before")
    token = create_token(conn, "admin").token
    headers = {"Authorization": f"Bearer {token}"}
    breaker = ConnectionBreaker()
    with TestClient(create_app(db_url, connection_kwargs=breaker.connection_kwargs)) as client:
        def post():
            return client.post("/graphql", headers=headers, json={
                "query": POST, "variables": transfer("mid-flight", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)])})

        assert client.post("/graphql", json={"query": BALANCE, "variables": {"code": WALLET_U1}},
                           headers=headers).status_code == 200  # the token is cached from here on
        breaker.armed = True
        read = client.post("/graphql", json={"query": BALANCE, "variables": {"code": WALLET_U1}}, headers=headers)
        assert not breaker.armed and read.status_code == 200 and amount(read.json()) == "70"

        breaker.armed = True
        refused = post().json()["data"]["postTransaction"]
        assert not breaker.armed
        assert (refused["__typename"], refused["code"]) == ("OperationRefused", "DATABASE_UNAVAILABLE")
        assert conn.execute("select count(*) from ledger.transactions where idempotency_key = 'mid-flight'"
                            ).fetchone()[0] == 0
        posted = post().json()["data"]["postTransaction"]
        assert posted["__typename"] == "PostedTransaction" and posted["replayed"] is False
        assert post().json()["data"]["postTransaction"]["replayed"] is True
