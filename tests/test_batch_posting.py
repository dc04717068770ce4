"""The engine's client batches (ledger/batch_posting.py) on their own: many refusals in one list,
a refusal that names nobody, waves of repeated keys, and a batch inside a caller's transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from book import BANK, WALLET_U1, WALLET_U2, open_book, spend, top_up

from ledger import batch_posting
from ledger.accounts import Side
from ledger.balances import balance
from ledger.errors import IdempotencyConflict, InsufficientFunds, LockTimeout
from ledger.posting import Leg, Posted, Transfer


def _top_up(key: str, amount: int = 10, wallet: str = WALLET_U1) -> Transfer:
    return Transfer(key, "wallet.top_up", [Leg(BANK, Side.DEBIT, amount), Leg(wallet, Side.CREDIT, amount)])


def _count(conn: psycopg.Connection[Any]) -> int:
    return int(conn.execute("select count(*) from ledger.transactions").fetchone()[0])  # type: ignore[index]


def test_many_refusals_each_get_their_own_answer_in_order(conn):
    """More refusals than the rounds before chunking: every request still gets exactly its own
    outcome, and a spend after the top-up that pays for it still sees it."""
    ids = open_book(conn)
    requests: list[Transfer] = []
    for i in range(30):
        requests.append(spend(WALLET_U1, 1_000_000, f"broke-{i}"))  # refused: U1 never holds this much
        requests.append(_top_up(f"top-{i}"))
        requests.append(spend(WALLET_U1, 10, f"pays-{i}"))  # paid by the top-up just before
    outcomes = batch_posting.post_each(conn, requests)
    assert len(outcomes) == 90
    for i in range(30):
        refused, topped, paid = outcomes[3 * i: 3 * i + 3]
        assert isinstance(refused, InsufficientFunds) and refused.details["index"] == 3 * i
        assert refused.message.startswith(f"transactions[{3 * i}]: ")
        assert isinstance(topped, Posted) and isinstance(paid, Posted)
    assert balance(conn, ids[WALLET_U1]).posted == 0
    assert _count(conn) == 60


def test_waves_answer_later_occurrences_of_a_key(conn):
    open_book(conn)
    requests = [_top_up("k"), _top_up("other"), _top_up("k"), _top_up("k", 11), _top_up("k")]
    outcomes = batch_posting.post_each(conn, requests)
    first = outcomes[0]
    assert isinstance(first, Posted) and not first.replayed
    assert isinstance(outcomes[2], Posted) and outcomes[2].replayed and outcomes[2].transaction_id == first.transaction_id
    assert isinstance(outcomes[3], IdempotencyConflict) and outcomes[3].details["index"] == 3
    assert isinstance(outcomes[4], Posted) and outcomes[4].replayed
    with pytest.raises(batch_posting.BatchRefused) as refused:
        batch_posting.post_all(conn, [_top_up("n1"), _top_up("n1"), _top_up("n1", 12)])
    assert refused.value.index == 2 and isinstance(refused.value.error, IdempotencyConflict)
    assert _count(conn) == 2  # k and other; the refused atomic waves left nothing


def test_an_atomic_batch_inside_the_callers_transaction_is_part_of_it(conn):
    open_book(conn)
    with conn.transaction():
        posted = batch_posting.post_all(conn, [_top_up("t1"), _top_up("t2"), _top_up("t1")])
        assert [p.replayed for p in posted] == [False, False, True]
        with pytest.raises(batch_posting.BatchRefused):
            batch_posting.post_all(conn, [_top_up("t3"), spend(WALLET_U2, 5, "t4")])
        assert _count(conn) == 2  # the refused batch went back to its savepoint, the earlier one stays
        conn.execute("select 1")
    assert _count(conn) == 2


@pytest.fixture
def locked_u2(db_url: str, conn: psycopg.Connection[Any]) -> Iterator[None]:
    ids = open_book(conn)
    top_up(conn, WALLET_U2, 100, "seed-u2")
    conn.execute("update ledger.settings set value = '200ms' where name = 'post_lock_timeout'")
    with psycopg.connect(db_url) as holder:
        holder.execute("select 1 from ledger.balances where account_id = %s for update", (ids[WALLET_U2],))
        yield
        holder.rollback()


def test_a_refusal_naming_nobody_answers_every_unposted_request(conn, locked_u2):
    outcomes = batch_posting.post_each(conn, [_top_up("a"), spend(WALLET_U2, 5, "waits"), _top_up("b")])
    assert all(isinstance(o, LockTimeout) and o.retryable for o in outcomes)
    assert [o.details["index"] for o in outcomes] == [0, 1, 2]  # type: ignore[union-attr]
    with pytest.raises(LockTimeout):
        batch_posting.post_all(conn, [_top_up("c"), spend(WALLET_U2, 5, "waits-too")])
    assert _count(conn) == 1  # the seed only
