"""Reads gathered across requests (graphql_api/read_gather.py): concurrent `account(code)`
requests share database trips, each caller gets its own answer and its own errors, and a read
sent after a post has been answered sees the post."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
from book import BANK, MERCHANT_M1, WALLET_U1, WALLET_U2, open_book, top_up

from graphql_api.app import create_app
from graphql_api.context import AppState, Limits
from graphql_api.core import loaders
from graphql_api.read_gather import ReadGatherer, read_gatherer
from ledger.errors import DatabaseUnavailable, ValidationError
from ledger.tokens import create_token

BALANCE = "query Balance($c: String!) { account(code: $c) { code balance { posted { amount } available { amount } } } }"
POST = """mutation Post($input: PostTransactionInput!) { postTransaction(input: $input) { __typename
    ... on PostedTransaction { transaction { id } } ... on LedgerError { code } } }"""


async def with_app(db_url: str, body: Any) -> Any:
    """`body(client, app)` with the app started (its pool open) and an httpx client calling it in
    this event loop, so concurrent requests really are concurrent."""
    app = create_app(db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await body(client, app)


async def ask(client: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables},
                                 headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def balance_of(answer: dict[str, Any]) -> str | None:
    account = answer["data"]["account"]
    return None if account is None else account["balance"]["posted"]["amount"]


def test_concurrent_balance_reads_share_trips_and_each_gets_its_own_answer(db_url, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 70, "u1")
    top_up(conn, WALLET_U2, 30, "u2")
    admin = create_token(conn, "admin").token
    holder_u1 = create_token(conn, "holder", "U1").token
    expected = {WALLET_U1: "70", WALLET_U2: "30", MERCHANT_M1: "0", "liabilities:wallets:NOBODY": None}
    codes = list(expected) * 5

    async def body(client: httpx.AsyncClient, app: Any) -> tuple[list[Any], list[Any], int]:
        await ask(client, admin, BALANCE, {"c": WALLET_U1})  # the tokens are looked up once, before
        await ask(client, holder_u1, BALANCE, {"c": WALLET_U1})
        gatherer = read_gatherer(app.state.ledger, loaders.accounts_with_balance_by_code)
        assert gatherer is not None
        trips_before = gatherer.trips
        answers = await asyncio.gather(*(ask(client, admin, BALANCE, {"c": code}) for code in codes))
        # A holder asking alongside sees only its own account; a bad variable fails only its request.
        mixed = await asyncio.gather(
            ask(client, holder_u1, BALANCE, {"c": WALLET_U1}), ask(client, holder_u1, BALANCE, {"c": WALLET_U2}),
            ask(client, admin, BALANCE, {"c": 42}), ask(client, admin, BALANCE, {"c": MERCHANT_M1}))
        return answers, mixed, gatherer.trips - trips_before

    answers, mixed, trips = asyncio.run(with_app(db_url, body))
    assert [balance_of(answer) for answer in answers] == [expected[code] for code in codes]
    assert all("errors" not in answer for answer in answers)
    assert trips < len(codes)  # gathered: fewer statements than requests
    assert balance_of(mixed[0]) == "70"
    assert mixed[1] == {"data": {"account": None}}  # not the holder's: as if it did not exist
    assert mixed[2]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT" and mixed[2]["data"] is None
    assert balance_of(mixed[3]) == "0"


def test_a_read_after_a_post_sees_it_while_other_reads_keep_trips_busy(db_url, conn):
    open_book(conn)
    top_up(conn, WALLET_U2, 30, "u2")
    operator = create_token(conn, "operator").token
    readers = [create_token(conn, "admin").token for _ in range(8)]
    posts = 15

    async def body(client: httpx.AsyncClient, app: Any) -> list[tuple[str | None, str | None]]:
        done = asyncio.Event()

        async def keep_reading(token: str) -> None:
            # The same account as the posts: a trip under way may hold it with an older balance.
            while not done.is_set():
                assert balance_of(await ask(client, token, BALANCE, {"c": WALLET_U2})) == "30"
                assert balance_of(await ask(client, token, BALANCE, {"c": WALLET_U1})) is not None

        background = [asyncio.ensure_future(keep_reading(token)) for token in readers]
        seen = []
        try:
            for i in range(1, posts + 1):
                posted = await ask(client, operator, POST, {"input": {
                    "idempotencyKey": f"raw-{i}", "kind": "wallet.top_up", "entries": [
                        {"accountCode": BANK, "side": "DEBIT", "amount": "1"},
                        {"accountCode": WALLET_U1, "side": "CREDIT", "amount": "1"}]}})
                assert posted["data"]["postTransaction"]["__typename"] == "PostedTransaction"
                read = await ask(client, operator, BALANCE, {"c": WALLET_U1})
                seen.append((str(i), balance_of(read)))
        finally:
            done.set()
            await asyncio.gather(*background)
        return seen

    for wanted, got in asyncio.run(with_app(db_url, body)):
        assert got == wanted


def run_gatherer(db_url: str, batch: Any, key_lists: list[list[Any]], *, reads_only: bool = True) -> tuple[list[Any], int]:
    async def main() -> tuple[list[Any], int]:
        state = AppState.open(db_url, Limits())
        try:
            gatherer = ReadGatherer(state, batch)
            outcomes = await asyncio.gather(*(gatherer.load(keys, reads_only=reads_only) for keys in key_lists),
                                            return_exceptions=True)
            return outcomes, gatherer.trips
        finally:
            state.close()
    return asyncio.run(main())


def upper_unless_bad(conn: psycopg.Connection[Any], keys: list[str]) -> dict[str, str]:
    """A loader that fails for the key "bad", as a key only one request sent might."""
    if "bad" in keys:
        raise ValidationError("bad is not a key", field="key")
    return dict(conn.execute("select k, upper(k) from unnest(%s::text[]) k", (keys,)).fetchall())


def test_requests_called_at_once_share_one_trip(db_url):
    outcomes, trips = run_gatherer(db_url, upper_unless_bad, [["a"], ["b", "c"], ["a"], ["d"]])
    assert trips == 1
    assert [{key: outcome[key] for key in keys} for keys, outcome in
            zip([["a"], ["b", "c"], ["a"], ["d"]], outcomes, strict=True)] == [
        {"a": "A"}, {"b": "B", "c": "C"}, {"a": "A"}, {"d": "D"}]


def test_a_key_that_fails_fails_only_the_request_that_sent_it(db_url):
    outcomes, trips = run_gatherer(db_url, upper_unless_bad, [["a"], ["bad"], ["c"]])
    assert outcomes[0]["a"] == "A" and outcomes[2]["c"] == "C"
    assert isinstance(outcomes[1], ValidationError) and outcomes[1].field == "key"
    assert trips == 4  # the shared trip, then each request on its own


def test_a_database_that_cannot_be_reached_answers_every_request_unavailable(db_url):
    def unreachable(conn: psycopg.Connection[Any], keys: list[str]) -> dict[str, str]:
        raise DatabaseUnavailable("no database")

    outcomes, trips = run_gatherer(db_url, unreachable, [["a"], ["b"]])
    assert all(isinstance(outcome, DatabaseUnavailable) for outcome in outcomes)
    assert trips == 1  # not run again one by one: it would fail the same way


def test_a_trip_holds_at_most_keys_max_keys(db_url):
    from graphql_api import read_gather

    count = read_gather.keys_max + 100
    key_lists = [[f"k{n}"] for n in range(count)]
    outcomes, trips = run_gatherer(db_url, upper_unless_bad, key_lists)
    assert trips == 2  # keys_max in the first, the rest in the second
    assert [outcome[keys[0]] for keys, outcome in zip(key_lists, outcomes, strict=True)] == [
        f"K{n}" for n in range(count)]
