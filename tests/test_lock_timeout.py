"""A row lock held on one account holds up only the requests that touch it: they are refused with
a retryable LOCK_TIMEOUT (the wait bounded by a lock timeout shorter than the statement timeout),
while the unrelated requests gathered into the same batch are posted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from book import BANK, MERCHANT_M1, WALLET_U1, WALLET_U2, open_book, spend, top_up
from graphql_client import Api
from starlette.testclient import TestClient

from graphql_api.app import create_app
from graphql_api.context import AppState, Limits
from graphql_api.core.gather import PostGatherer
from graphql_api.errors import error_result
from ledger.accounts import Side
from ledger.balances import balance
from ledger.errors import DatabaseUnavailable, LedgerError, LockTimeout, StatementTimeout, translate
from ledger.gather import post_gathered
from ledger.posting import Leg, Posted, Transfer, post_one

LIMITS = Limits(lock_timeout_ms=200, statement_timeout_ms=20_000)


@pytest.fixture
def locked_u2(db_url: str, conn: psycopg.Connection[Any]) -> Iterator[dict[str, int]]:
    """The book, with U2's balance row locked by another connection for the test's duration."""
    ids = open_book(conn)
    top_up(conn, WALLET_U2, 100, "seed-u2")
    # The library path bounds its wait by this setting when its caller set none.
    conn.execute("update ledger.settings set value = '200ms' where name = 'post_lock_timeout'")
    with psycopg.connect(db_url) as holder:
        holder.execute("select 1 from ledger.balances where account_id = %s for update", (ids[WALLET_U2],))
        yield ids
        holder.rollback()


def _innocent(key: str) -> Transfer:
    return Transfer(key, "wallet.top_up", [Leg(BANK, Side.DEBIT, 10), Leg(WALLET_U1, Side.CREDIT, 10)])


def _assert_lock_timeout(outcome: object) -> None:
    assert isinstance(outcome, LockTimeout), outcome
    assert outcome.retryable and outcome.code == "LOCK_TIMEOUT"
    assert "ask for less" not in outcome.message


def test_the_library_path_waits_a_bounded_time(conn, locked_u2):
    conn.execute("set statement_timeout = '20s'")  # without a lock timeout this would be the wait
    with pytest.raises(LockTimeout) as caught:
        post_one(conn, spend(WALLET_U2, 5, "waits"))
    _assert_lock_timeout(caught.value)
    assert conn.execute("show lock_timeout").fetchone()[0] == "0"  # the caller's own setting is back


def test_gathered_innocents_are_posted_and_the_waiter_may_retry(conn, locked_u2):
    outcomes = post_gathered(conn, [_innocent("a"), spend(WALLET_U2, 5, "waits"), _innocent("b")])
    assert isinstance(outcomes[0], Posted) and isinstance(outcomes[2], Posted)
    _assert_lock_timeout(outcomes[1])
    assert balance(conn, locked_u2[WALLET_U1]).posted == 20
    assert balance(conn, locked_u2[MERCHANT_M1]).posted == 0


def test_through_the_api_gatherer(db_url, conn, locked_u2):
    async def main() -> list[Any]:
        state = AppState.open(db_url, LIMITS)
        try:
            gatherer = PostGatherer(state)
            return await asyncio.gather(gatherer.post(_innocent("a")), gatherer.post(spend(WALLET_U2, 5, "waits")),
                                        gatherer.post(_innocent("b")), return_exceptions=True)
        finally:
            state.close()

    outcomes = asyncio.run(main())
    assert not isinstance(outcomes[0], Exception) and not isinstance(outcomes[2], Exception)
    _assert_lock_timeout(outcomes[1])
    assert error_result(outcomes[1]).details["retryable"] is True  # type: ignore[attr-defined]
    assert balance(conn, locked_u2[WALLET_U1]).posted == 20


def test_over_http_the_error_is_typed_and_retryable(db_url, locked_u2):
    with TestClient(create_app(db_url, limits=LIMITS)) as client:
        api = Api(client, db_url)
        query = """mutation($input: PostTransactionInput!) { postTransaction(input: $input) { __typename
                   ... on LedgerError { code message } ... on OperationRefused { details } } }"""
        entries = [{"accountCode": WALLET_U2, "side": "DEBIT", "amount": "5"},
                   {"accountCode": MERCHANT_M1, "side": "CREDIT", "amount": "5"}]
        result = api.data(query, {"input": {"idempotencyKey": "waits", "kind": "payment.direct",
                                            "entries": entries}}, role="operator")["postTransaction"]
        assert result["code"] == "LOCK_TIMEOUT" and result["details"]["retryable"] is True
        assert "ask for less" not in result["message"]
        # A read waiting on the lock: a GraphQL error with the same code, flagged retryable.
        with psycopg.connect(db_url) as other:
            other.execute("lock table ledger.accounts in access exclusive mode")
            body = api.query('{ account(code: "%s") { code } }' % WALLET_U1, role="admin")
            other.rollback()
        extensions = body["errors"][0]["extensions"]
        assert extensions["code"] == "LOCK_TIMEOUT" and extensions["retryable"] is True


def test_timeouts_and_lost_connections_are_retryable(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("set statement_timeout = '10ms'")
        with pytest.raises(psycopg.errors.QueryCanceled) as cancelled:
            conn.execute("select pg_sleep(1)")
    with pytest.raises(psycopg.OperationalError) as unreachable:
        psycopg.connect(db_url, port=1, connect_timeout=2)
    timeout, unavailable = translate(cancelled.value), translate(unreachable.value)
    assert isinstance(timeout, StatementTimeout) and timeout.code == "STATEMENT_TIMEOUT"
    assert isinstance(unavailable, DatabaseUnavailable) and unavailable.code == "DATABASE_UNAVAILABLE"
    assert all(isinstance(e, LedgerError) and e.retryable for e in (timeout, unavailable))
