"""A refusal is final for its idempotency key: the same request again is answered the same typed
refusal, flagged as a replay; another request under the key is a conflict; a malformed request
leaves the key free."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from book import BANK, MERCHANT_M1, WALLET_U1, open_book, spend, top_up

from ledger.accounts import Side
from ledger.balances import balance
from ledger.errors import AppendOnly, IdempotencyConflict, InsufficientFunds, UnbalancedTransaction, ValidationError
from ledger.gather import post_gathered
from ledger.posting import Leg, Posted, Transfer, post_one


def _refusals(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute("select idempotency_key, sqlstate from ledger.refusals order by 1").fetchall()


def test_insufficient_funds_is_final_for_the_key(conn):
    ids = open_book(conn)
    with pytest.raises(InsufficientFunds) as first:
        post_one(conn, spend(WALLET_U1, 500, "pay-1"))
    assert "replayed" not in first.value.details
    top_up(conn, WALLET_U1, 1000, "t1")
    with pytest.raises(InsufficientFunds) as again:
        post_one(conn, spend(WALLET_U1, 500, "pay-1"))
    assert again.value.details["replayed"] is True
    assert again.value.details["requested"] == first.value.details["requested"]
    assert again.value.message == first.value.message
    with pytest.raises(IdempotencyConflict):
        post_one(conn, spend(WALLET_U1, 400, "pay-1"))
    assert balance(conn, ids[WALLET_U1]).posted == 1000
    assert post_one(conn, spend(WALLET_U1, 500, "pay-2")).replayed is False


def test_a_gathered_refusal_is_recorded_for_its_own_key_only(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    outcomes = post_gathered(conn, [spend(WALLET_U1, 60, "a"), spend(WALLET_U1, 60, "b"), spend(WALLET_U1, 40, "c")])
    assert isinstance(outcomes[0], Posted) and isinstance(outcomes[2], Posted)
    assert isinstance(outcomes[1], InsufficientFunds)
    assert _refusals(conn) == [("b", "LD006")]
    replay = post_gathered(conn, [spend(WALLET_U1, 60, "a"), spend(WALLET_U1, 60, "b")])
    assert isinstance(replay[0], Posted) and replay[0].replayed
    assert isinstance(replay[1], InsufficientFunds) and replay[1].details["replayed"] is True


def test_malformed_requests_leave_the_key_free(conn):
    open_book(conn)
    ahead = datetime.now(UTC) + timedelta(days=30)
    with pytest.raises(ValidationError):
        post_one(conn, Transfer("k", "wallet.top_up", [Leg(BANK, Side.DEBIT, 5), Leg(WALLET_U1, Side.CREDIT, 5)],
                                effective_at=ahead))
    with pytest.raises(UnbalancedTransaction):
        post_one(conn, Transfer("k", "wallet.top_up", [Leg(BANK, Side.DEBIT, 5), Leg(WALLET_U1, Side.CREDIT, 4)]))
    assert _refusals(conn) == []
    assert post_one(conn, Transfer("k", "wallet.top_up", [Leg(BANK, Side.DEBIT, 5),
                                                          Leg(WALLET_U1, Side.CREDIT, 5)])).replayed is False


def test_inside_a_callers_transaction_the_refusal_is_the_callers_to_keep(conn):
    open_book(conn)
    with conn.transaction(force_rollback=True):
        with pytest.raises(InsufficientFunds):
            post_one(conn, spend(WALLET_U1, 5, "inside"))
        assert _refusals(conn) == [("inside", "LD006")]
    assert _refusals(conn) == []


def test_refusals_are_append_only(conn):
    open_book(conn)
    with pytest.raises(InsufficientFunds):
        post_one(conn, spend(WALLET_U1, 5, "x", to=MERCHANT_M1))
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("delete from ledger.refusals")
    assert caught.value.sqlstate == AppendOnly.sqlstate


POST = """mutation($input: PostTransactionInput!) { postTransaction(input: $input) { __typename
  ... on PostedTransaction { replayed } ... on LedgerError { code message } ... on InsufficientFunds { details }
  ... on IdempotencyConflict { details } } }"""


def test_through_post_transaction(api, conn):
    open_book(conn)

    def send(amount: int) -> dict[str, object]:
        entries = [{"accountCode": WALLET_U1, "side": "DEBIT", "amount": str(amount)},
                   {"accountCode": MERCHANT_M1, "side": "CREDIT", "amount": str(amount)}]
        return api.data(POST, {"input": {"idempotencyKey": "gql-1", "kind": "payment.direct", "entries": entries}},
                        role="operator")["postTransaction"]

    first = send(500)
    assert first["__typename"] == "InsufficientFunds" and "replayed" not in first["details"]
    top_up(conn, WALLET_U1, 1000, "t1")
    again = send(500)
    assert again["__typename"] == "InsufficientFunds" and again["details"]["replayed"] is True
    assert send(400)["__typename"] == "IdempotencyConflict"
