"""balanceChanged over WebSocket (graphql-transport-ws), driven by LISTEN/NOTIFY."""

from __future__ import annotations

import logging

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


def _acknowledged(api):
    ws, socket = connect(api, {"authorization": f"Bearer {api.token()}"})
    assert socket.receive_json()["type"] == "connection_ack"
    return ws, socket


def test_a_malformed_subscribe_message_closes_the_socket_naming_the_field(api, caplog):
    """strawberry reads a subscribe message's fields as they come: a payload that is not an object
    raised in the socket's handler, a query that is not a string failed in the operation's task
    (logged, the client sent a bare `complete`), and variables that are a list were INTERNAL."""
    cases = [
        ({"id": 5, "type": "subscribe", "payload": {"query": "{ __typename }"}}, "id"),
        ({"id": "x" * 129, "type": "subscribe", "payload": {"query": "{ __typename }"}}, "id"),
        ({"id": "a\u0000b", "type": "subscribe", "payload": {"query": "{ __typename }"}}, "id"),
        ({"id": "a\nb", "type": "subscribe", "payload": {"query": "{ __typename }"}}, "id"),
        ({"id": "\ud800", "type": "subscribe", "payload": {"query": "{ __typename }"}}, "id"),
        ({"id": "1", "type": "subscribe", "payload": 5}, "payload"),
        ({"id": "1", "type": "subscribe"}, "payload"),
        ({"id": "1", "type": "subscribe", "payload": {"query": 5}}, "payload.query"),
        ({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }", "variables": [1]}},
         "payload.variables"),
        ({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }", "operationName": ["a"]}},
         "payload.operationName"),
        ({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }", "extensions": []}},
         "payload.extensions"),
    ]
    with caplog.at_level(logging.ERROR):
        for message, field in cases:
            ws, socket = _acknowledged(api)
            try:
                socket.send_json(message)
                with pytest.raises(WebSocketDisconnect) as closed:
                    pytest.fail(f"answered: {socket.receive_json()}")
                assert closed.value.code == 4400, (message, closed.value)
                assert closed.value.reason.startswith(f"subscribe: {field} must be "), (message, closed.value.reason)
            finally:
                ws.__exit__(None, None, None)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_document_errors_over_the_websocket_are_typed_as_over_http(api, caplog):
    """A document that does not parse raised out of the stream (logged, a bare `complete`); an
    operationName naming no operation was masked as INTERNAL. Both are the client's mistakes."""
    cases = [("{", None, "GRAPHQL_PARSE_FAILED"), ("query A { __typename }", "B", "BAD_REQUEST")]
    with caplog.at_level(logging.ERROR):
        ws, socket = _acknowledged(api)
        try:
            for number, (query, operation_name, code) in enumerate(cases):
                socket.send_json({"id": str(number), "type": "subscribe",
                                  "payload": {"query": query, "operationName": operation_name}})
                message = socket.receive_json()
                assert message["type"] == "error" and message["id"] == str(number), message
                assert [error["extensions"]["code"] for error in message["payload"]] == [code], message
            socket.send_json({"id": "ok", "type": "subscribe", "payload": {"query": "{ __typename }"}})
            assert socket.receive_json()["payload"] == {"data": {"__typename": "Query"}}
        finally:
            ws.__exit__(None, None, None)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
