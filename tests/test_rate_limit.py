"""Per-token rate limits: past the burst a token gets 429 RATE_LIMITED with Retry-After, other
tokens are not affected, and the bucket refills."""

from __future__ import annotations

from starlette.testclient import TestClient

from graphql_api.app import create_app
from graphql_api.context import Limits
from ledger.tokens import create_token

QUERY = {"query": "{ trialBalance { balanced } }"}


def test_a_token_past_its_burst_gets_429_with_retry_after(db_url, conn):
    limits = Limits(requests_per_s_per_token=2, request_burst_per_token=5)
    busy, calm = create_token(conn, "auditor").token, create_token(conn, "auditor").token
    with TestClient(create_app(db_url, limits=limits)) as client:
        now_s = [0.0]  # the buckets' clock stands still unless the test moves it
        client.app.state.ledger.buckets.clock_s = lambda: now_s[0]

        def ask(token):
            return client.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"})

        assert [ask(busy).status_code for _ in range(5)] == [200] * 5
        refused = ask(busy)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["retryable"] is True
        assert ask(calm).status_code == 200  # per token
        now_s[0] += int(refused.headers["Retry-After"])
        assert ask(busy).status_code == 200  # refilled


def test_rest_routes_and_socket_operations_count_too(db_url, conn):
    from book import WALLET_U1, open_book

    open_book(conn)
    limits = Limits(requests_per_s_per_token=1, request_burst_per_token=2)
    token = create_token(conn, "auditor").token
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/statements/{WALLET_U1}.json?from=2026-01-01&to=2026-02-01"
    with TestClient(create_app(db_url, limits=limits)) as client:
        client.app.state.ledger.buckets.clock_s = lambda: 0.0
        assert [client.get(url, headers=headers).status_code for _ in range(2)] == [200, 200]
        refused = client.get(url, headers=headers)
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"

    with TestClient(create_app(db_url, limits=limits)) as client:
        client.app.state.ledger.buckets.clock_s = lambda: 0.0
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as socket:
            socket.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
            assert socket.receive_json()["type"] == "connection_ack"
            answers = []
            for number in range(3):
                socket.send_json({"id": str(number), "type": "subscribe", "payload": QUERY})
                answers.append(socket.receive_json())
                if answers[-1]["type"] == "next":
                    assert socket.receive_json()["type"] == "complete"
            assert [a["type"] for a in answers] == ["next", "next", "error"]
            assert answers[2]["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
