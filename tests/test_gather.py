"""Group commit: gathered postings share batches and each caller gets its own outcome."""

from __future__ import annotations

import threading

from book import WALLET_U1, WALLET_U2, open_book, spend, top_up
from psycopg_pool import ConnectionPool

from ledger.balances import balance
from ledger.errors import AccountNotFound, HoldNotFound, InsufficientFunds
from ledger.gather import Gatherer, post_gathered
from ledger.posting import PostHold


def test_one_bad_request_fails_alone_and_the_rest_post_together(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    outcomes = post_gathered(conn, [spend(WALLET_U1, 60, "a"), spend(WALLET_U1, 60, "b"),
                                    spend("liabilities:wallets:NOPE", 1, "c"), spend(WALLET_U1, 40, "d")])
    assert not isinstance(outcomes[0], Exception) and not isinstance(outcomes[3], Exception)
    assert isinstance(outcomes[1], InsufficientFunds) and isinstance(outcomes[2], AccountNotFound)
    assert balance(conn, ids[WALLET_U1]).posted == 0


def test_an_error_without_a_position_falls_back_to_one_by_one(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    outcomes = post_gathered(conn, [spend(WALLET_U1, 10, "a"), PostHold("p", 999)])
    assert not isinstance(outcomes[0], Exception) and isinstance(outcomes[1], HoldNotFound)


def test_threads_share_batches_and_limits_still_hold(db_url):
    with ConnectionPool(db_url, min_size=2, max_size=4, kwargs={"autocommit": True}, open=True) as pool:
        with pool.connection() as conn:
            ids = open_book(conn)
            top_up(conn, WALLET_U1, 1000, "t1")
        gatherer = Gatherer(pool)
        outcomes: list[object] = [None] * 40

        def client(i: int) -> None:
            try:
                outcomes[i] = gatherer.submit(spend(WALLET_U1, 50, f"s{i}", to=WALLET_U2))
            except Exception as exc:  # noqa: BLE001 - the outcome is what the test inspects
                outcomes[i] = exc

        threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        wins = [o for o in outcomes if not isinstance(o, Exception)]
        assert len(wins) == 20
        assert all(isinstance(o, InsufficientFunds) for o in outcomes if isinstance(o, Exception))
        assert gatherer.batches < 40
        with pool.connection() as conn:
            assert balance(conn, ids[WALLET_U1]).posted == 0
            assert balance(conn, ids[WALLET_U2]).posted == 1000
