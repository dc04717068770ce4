"""balanceChanged over WebSocket (graphql-transport-ws), driven by LISTEN/NOTIFY."""

from __future__ import annotations

import pytest
from book import WALLET_U1, WALLET_U2, open_book, top_up
from starlette.websockets import WebSocketDisconnect

SUBSCRIBE = """subscription($code: String!) { balanceChanged(accountCode: $code) {
  posted { amount } available { amount } } }"""


def connect(api, payload):
    ws = api.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"])
    socket = ws.__enter__()
    socket.send_json({"type": "connection_init", "payload": payload})
    return ws, socket


def test_subscription_receives_a_change(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 1000, "before")
    ws, socket = connect(api, {"authorization": f"Bearer {api.token('holder', 'U1')}"})
    try:
        assert socket.receive_json()["type"] == "connection_ack"
        socket.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE,
                                                                       "variables": {"code": WALLET_U1}}})
        now = socket.receive_json()
        assert now["type"] == "next" and now["payload"]["data"]["balanceChanged"]["posted"]["amount"] == "1000"
        top_up(conn, WALLET_U2, 5, "elsewhere")  # another account: no message for this subscription
        top_up(conn, WALLET_U1, 234, "after")
        changed = socket.receive_json()
        assert changed["payload"]["data"]["balanceChanged"] == {"posted": {"amount": "1234"},
                                                                 "available": {"amount": "1234"}}
        socket.send_json({"id": "1", "type": "complete"})
    finally:
        ws.__exit__(None, None, None)


def test_subscription_follows_the_access_rules(api, conn):
    open_book(conn)
    ws, socket = connect(api, {"authorization": f"Bearer {api.token('holder', 'U1')}"})
    try:
        assert socket.receive_json()["type"] == "connection_ack"
        socket.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE,
                                                                       "variables": {"code": WALLET_U2}}})
        message = socket.receive_json()
        assert message["type"] == "error" or message["payload"].get("errors")
        assert "ACCOUNT_NOT_FOUND" in str(message)
    finally:
        ws.__exit__(None, None, None)


def test_subscription_without_a_valid_token_is_refused(api):
    ws, socket = connect(api, {"authorization": "Bearer nope"})
    with pytest.raises(WebSocketDisconnect) as refused:
        socket.receive_json()
    assert refused.value.code == 4403
    ws.__exit__(None, None, None)
