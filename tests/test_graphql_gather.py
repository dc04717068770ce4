"""Concurrent posting mutations gathered into one post() batch: each caller gets its own result,
and one bad request in a gathered batch does not fail the others."""

from __future__ import annotations

import asyncio

from book import BANK, MERCHANT_M1, WALLET_U1, open_book, spend, top_up

from graphql_api.context import AppState, Limits
from graphql_api.core.gather import PostGatherer
from ledger.accounts import Side
from ledger.balances import balance
from ledger.errors import IdempotencyConflict, InsufficientFunds
from ledger.posting import Leg, Transfer


def run_gathered(db_url, requests):
    async def main():
        state = AppState.open(db_url, Limits())
        try:
            gatherer = PostGatherer(state)
            outcomes = await asyncio.gather(*(gatherer.post(r) for r in requests), return_exceptions=True)
            return outcomes, gatherer.batches
        finally:
            state.close()
    return asyncio.run(main())


def test_concurrent_posts_share_batches_and_get_their_own_results(db_url, conn):
    ids = open_book(conn)
    requests = [Transfer(f"t{i}", "wallet.top_up", [Leg(BANK, Side.DEBIT, 10), Leg(WALLET_U1, Side.CREDIT, 10)])
                for i in range(20)]
    outcomes, batches = run_gathered(db_url, requests)
    assert [o.replayed for o in outcomes] == [False] * 20
    assert len({o.transaction_id for o in outcomes}) == 20
    assert batches < 20  # gathered: fewer round trips than requests
    assert balance(conn, ids[WALLET_U1]).posted == 200


def test_a_bad_request_fails_alone(db_url, conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100, "seed")
    requests = [spend(WALLET_U1, 10, f"ok-{i}") for i in range(5)]
    requests.insert(2, spend(WALLET_U1, 1000, "too-much"))
    requests.append(Transfer("seed", "wallet.top_up", [Leg(BANK, Side.DEBIT, 1), Leg(WALLET_U1, Side.CREDIT, 1)]))
    outcomes, _ = run_gathered(db_url, requests)
    assert isinstance(outcomes[2], InsufficientFunds)
    assert isinstance(outcomes[-1], IdempotencyConflict)
    assert all(o.replayed is False for i, o in enumerate(outcomes) if i not in (2, len(outcomes) - 1))
    assert balance(conn, ids[WALLET_U1]).posted == 50
    assert balance(conn, ids[MERCHANT_M1]).posted == 50


def test_same_key_twice_at_once_is_a_replay(db_url, conn):
    open_book(conn)
    request = Transfer("dup", "wallet.top_up", [Leg(BANK, Side.DEBIT, 7), Leg(WALLET_U1, Side.CREDIT, 7)])
    outcomes, _ = run_gathered(db_url, [request, request, request])
    assert sorted(o.replayed for o in outcomes) == [False, True, True]
    assert len({o.transaction_id for o in outcomes}) == 1


def test_concurrent_http_mutations_each_get_a_typed_result(api, conn):
    from concurrent.futures import ThreadPoolExecutor

    open_book(conn)
    top_up(conn, WALLET_U1, 100, "seed")
    query = """mutation($input: PostTransactionInput!) { postTransaction(input: $input) {
        __typename ... on LedgerError { code } } }"""
    token = api.token("operator")

    def pay(i):
        amount = "1000" if i == 3 else "10"
        return api.data(query, {"input": {"idempotencyKey": f"pay-{i}", "kind": "payment.direct", "entries": [
            {"accountCode": WALLET_U1, "side": "DEBIT", "amount": amount},
            {"accountCode": MERCHANT_M1, "side": "CREDIT", "amount": amount}]}}, token=token)["postTransaction"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(pay, range(8)))
    assert results[3] == {"__typename": "InsufficientFunds", "code": "INSUFFICIENT_FUNDS"}
    assert [r["__typename"] for i, r in enumerate(results) if i != 3] == ["PostedTransaction"] * 7
