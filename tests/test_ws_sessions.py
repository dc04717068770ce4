"""WebSocket sessions: the token is checked for every operation and while a subscription runs
(revoked -> the socket closes with 4403), and every operation has its own context (fresh
DataLoader cache, own row budget)."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from book import WALLET_U1, open_book, top_up
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from graphql_api.app import create_app
from graphql_api.context import Limits
from ledger.tokens import create_token, revoke_token

SUBSCRIBE = """subscription($code: String!) { balanceChanged(accountCode: $code) { posted { amount } } }"""
BALANCE = """query($code: String!) { account(code: $code) { balance { posted { amount } } } }"""
TTL_S = 1


@pytest.fixture
def client(db_url):
    with TestClient(create_app(db_url, limits=Limits(token_cache_ttl_s=TTL_S))) as test_client:
        yield test_client


@contextmanager
def socket_for(client, token):
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
        socket.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        assert socket.receive_json()["type"] == "connection_ack"
        yield socket


def ask(socket, op_id, query, variables=None):
    socket.send_json({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})
    message = socket.receive_json()
    assert message["type"] == "next", message
    assert socket.receive_json() == {"id": op_id, "type": "complete"}
    return message["payload"]


def posted(payload):
    assert not payload.get("errors"), payload
    return payload["data"]["account"]["balance"]["posted"]["amount"]


def test_revoked_mid_subscription_closes_the_socket_before_any_further_event(client, db_url, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 1000, "before")
    issued = create_token(conn, "operator")
    with socket_for(client, issued.token) as socket:
        socket.send_json({"id": "s", "type": "subscribe", "payload": {"query": SUBSCRIBE,
                                                                       "variables": {"code": WALLET_U1}}})
        assert socket.receive_json()["payload"]["data"]["balanceChanged"]["posted"]["amount"] == "1000"
        revoke_token(conn, str(issued.id), reason="leaked")
        time.sleep(TTL_S + 0.2)  # past the token cache's TTL
        top_up(conn, WALLET_U1, 1, "after the revocation")
        with pytest.raises(WebSocketDisconnect) as closed:
            message = socket.receive_json()
            pytest.fail(f"an event after the revocation: {message}")
        assert closed.value.code == 4403


def test_a_revoked_token_cannot_query_on_an_open_socket(client, conn):
    open_book(conn)
    issued = create_token(conn, "auditor")
    with socket_for(client, issued.token) as socket:
        assert posted(ask(socket, "1", BALANCE, {"code": WALLET_U1})) == "0"
        revoke_token(conn, issued.token)
        time.sleep(TTL_S + 0.2)
        socket.send_json({"id": "2", "type": "subscribe", "payload": {"query": BALANCE,
                                                                       "variables": {"code": WALLET_U1}}})
        with pytest.raises(WebSocketDisconnect) as closed:
            message = socket.receive_json()
            pytest.fail(f"answered after the revocation: {message}")
        assert closed.value.code == 4403


def test_an_idle_socket_of_a_revoked_token_is_closed(client, conn):
    issued = create_token(conn, "auditor")
    with socket_for(client, issued.token) as socket:
        revoke_token(conn, issued.token)
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()  # the periodic check closes it; nothing else is sent
        assert closed.value.code == 4403


def test_each_query_on_a_socket_sees_the_balance_as_it_is_now(client, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "first")
    with socket_for(client, create_token(conn, "auditor").token) as socket:
        assert posted(ask(socket, "1", BALANCE, {"code": WALLET_U1})) == "100"
        top_up(conn, WALLET_U1, 23, "second")
        assert posted(ask(socket, "2", BALANCE, {"code": WALLET_U1})) == "123"


def test_many_small_queries_on_one_socket_never_exhaust_the_row_budget(client, conn):
    page = """{ accounts(first: 500) { edges { node { code } } } }"""
    budget = Limits().rows_per_request_max
    with socket_for(client, create_token(conn, "auditor").token) as socket:
        for number in range(budget // 500 + 3):
            payload = ask(socket, str(number), page)
            assert not payload.get("errors"), (number, payload)
