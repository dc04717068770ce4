"""`postTransactions` over HTTP: atomic and not, every error a single post can give at the first,
a middle and the last position, replays inside a batch and across calls, the size limits, roles,
and that an atomic refusal writes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from book import BANK, CAPPED, MERCHANT_M1, USD_BANK, WALLET_U1, WALLET_U2, open_book, top_up
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from graphql_api.app import create_app
from graphql_api.context import Limits
from ledger.account_lifecycle import set_status
from ledger.accounts import AccountStatus
from ledger.periods import close_period
from ledger.tokens import create_token

ERROR = "... on LedgerError { __typename code message } ... on ValidationError { field }"
RESULT = """__typename ... on PostedTransaction { replayed transaction { id idempotencyKey
            entries { account { code } side amount { amount } } } } %s""" % ERROR
BATCH = """mutation($input: PostTransactionsInput!) { postTransactions(input: $input) { __typename
  ... on TransactionsPosted { postedCount replayedCount refusedCount results { %s } }
  ... on BatchRefused { code message index details error { __typename code message ... on ValidationError { field } } }
  %s } }""" % (RESULT, ERROR)
SINGLE = """mutation($input: PostTransactionInput!) { postTransaction(input: $input) { %s } }""" % RESULT
BALANCE = """query($code: String!) { account(code: $code) { balance { posted { amount } } } }"""


def item(key, legs, **extra):
    return {"idempotencyKey": key, "kind": extra.pop("kind", "wallet.top_up"),
            "entries": [{"accountCode": code, "side": side, "amount": str(amount)} for code, side, amount in legs],
            **extra}


def good(key, amount=5):
    return item(key, [(BANK, "DEBIT", amount), (WALLET_U2, "CREDIT", amount)])


def batch(api, transactions, atomic, role="operator", holder=None):
    return api.data(BATCH, {"input": {"atomic": atomic, "transactions": transactions}},
                    role=role, holder=holder)["postTransactions"]


def single(api, transaction, role="operator"):
    return api.data(SINGLE, {"input": transaction}, role=role)["postTransaction"]


def posted(api, code):
    return int(api.data(BALANCE, {"code": code})["account"]["balance"]["posted"]["amount"])


def written(conn):
    """Everything a posting writes or records: transactions, entries, refusals."""
    return conn.execute("""select (select count(*) from ledger.transactions), (select count(*) from ledger.entries),
                                  (select count(*) from ledger.refusals)""").fetchone()


# Each case: what to prepare, a transaction the single post refuses, and the type it answers.
def _frozen(conn):
    set_status(conn, WALLET_U1, AccountStatus.FROZEN, "KYC review")


def _closed(conn):
    close_period(conn, datetime.now(UTC) - timedelta(days=1))


def _key_taken(conn):
    top_up(conn, WALLET_U1, 7, "taken")


CASES = {
    "InsufficientFunds": (None, item("bad", [(WALLET_U1, "DEBIT", 1001), (MERCHANT_M1, "CREDIT", 1001)])),
    "UnbalancedTransaction": (None, item("bad", [(BANK, "DEBIT", 10), (WALLET_U1, "CREDIT", 9)])),
    "AccountNotFound": (None, item("bad", [(BANK, "DEBIT", 10), ("liabilities:wallets:NOPE", "CREDIT", 10)])),
    "CurrencyMismatch": (None, item("bad", [(USD_BANK, "DEBIT", 10), (WALLET_U1, "CREDIT", 10)])),
    "LimitExceeded": (None, item("bad", [(BANK, "DEBIT", 1001), (CAPPED, "CREDIT", 1001)])),
    "ValidationError": (None, item("bad", [(BANK, "DEBIT", 0), (WALLET_U1, "CREDIT", 0)])),
    "AccountFrozen": (_frozen, item("bad", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)])),
    "PeriodClosed": (_closed, item("bad", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)],
                                   effectiveAt=(datetime.now(UTC) - timedelta(days=2)).isoformat())),
    "IdempotencyConflict": (_key_taken, item("taken", [(BANK, "DEBIT", 8), (WALLET_U1, "CREDIT", 8)])),
}


def _prepare(conn, case):
    open_book(conn)
    top_up(conn, WALLET_U1, 1000, "seed")
    prepare, bad = CASES[case]
    if prepare is not None:
        prepare(conn)
    return bad


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_error_at_every_position(api, conn, case):
    bad = _prepare(conn, case)
    # The single post gives this very error: the batch must give the same.
    alone = single(api, {**bad, "idempotencyKey": bad["idempotencyKey"] if case == "IdempotencyConflict" else "alone"})
    assert alone["__typename"] == case, alone
    for run, position in enumerate([0, 2, 4]):
        goods = [good(f"g{run}-{i}") for i in range(4)]
        transactions = [*goods[:position], bad, *goods[position:]]
        before, u2 = written(conn), posted(api, WALLET_U2)

        refused = batch(api, transactions, atomic=True)
        assert refused["__typename"] == "BatchRefused", refused
        assert (refused["index"], refused["code"], refused["error"]["__typename"]) == (position, "BATCH_REFUSED", case)
        assert refused["error"]["code"] == alone["code"]
        assert refused["error"]["message"].startswith(f"transactions[{position}]")
        assert refused["details"] == {"index": position, "errorCode": alone["code"]}
        if case == "ValidationError":
            assert refused["error"]["field"] == alone["field"]
        assert written(conn) == before and posted(api, WALLET_U2) == u2  # nothing, not even the refusal

        each = batch(api, transactions, atomic=False)
        assert each["__typename"] == "TransactionsPosted", each
        kinds = [r["__typename"] for r in each["results"]]
        assert kinds == ["PostedTransaction"] * position + [case] + ["PostedTransaction"] * (4 - position)
        assert each["results"][position]["code"] == alone["code"]
        assert (each["postedCount"], each["replayedCount"], each["refusedCount"]) == (4, 0, 1)
        assert [r["transaction"]["idempotencyKey"] for r in each["results"] if "transaction" in r] == \
            [g["idempotencyKey"] for g in goods]
        assert all(r["replayed"] is False for r in each["results"] if "transaction" in r)
        assert posted(api, WALLET_U2) == u2 + 20


def test_atomic_batch_posts_all_in_order(api, conn):
    open_book(conn)
    transactions = [good("a", 100), item("b", [(WALLET_U2, "DEBIT", 60), (MERCHANT_M1, "CREDIT", 60)],
                                         kind="payment.direct"), good("c", 7)]
    done = batch(api, transactions, atomic=True)
    assert done["__typename"] == "TransactionsPosted"
    assert (done["postedCount"], done["replayedCount"], done["refusedCount"]) == (3, 0, 0)
    assert [r["transaction"]["idempotencyKey"] for r in done["results"]] == ["a", "b", "c"]
    assert {(e["account"]["code"], e["side"], e["amount"]["amount"]) for e in done["results"][1]["transaction"]["entries"]} \
        == {(WALLET_U2, "DEBIT", "60"), (MERCHANT_M1, "CREDIT", "60")}
    assert posted(api, WALLET_U2) == 47
    # A later transaction may spend what an earlier one of the same batch brought, not more.
    refused = batch(api, [good("d", 10), item("e", [(WALLET_U2, "DEBIT", 58), (MERCHANT_M1, "CREDIT", 58)])],
                    atomic=True)
    assert (refused["__typename"], refused["index"], refused["error"]["__typename"]) == \
        ("BatchRefused", 1, "InsufficientFunds")
    assert posted(api, WALLET_U2) == 47


def test_replays_inside_a_batch(api, conn):
    open_book(conn)
    for atomic in (True, False):
        k = f"dup-{atomic}"
        done = batch(api, [good(k), good(f"other-{atomic}"), good(k)], atomic=atomic)
        first, _, again = done["results"]
        assert (first["replayed"], again["replayed"]) == (False, True)
        assert again["transaction"]["id"] == first["transaction"]["id"]
        assert (done["postedCount"], done["replayedCount"]) == (2, 1)
    assert posted(api, WALLET_U2) == 20

    before = written(conn)
    refused = batch(api, [good("x1"), good("twice", 5), good("twice", 6)], atomic=True)
    assert (refused["__typename"], refused["index"], refused["error"]["__typename"]) == \
        ("BatchRefused", 2, "IdempotencyConflict")
    assert written(conn) == before
    each = batch(api, [good("x1"), good("twice", 5), good("twice", 6)], atomic=False)
    assert [r["__typename"] for r in each["results"]] == ["PostedTransaction", "PostedTransaction", "IdempotencyConflict"]
    assert posted(api, WALLET_U2) == 30


def test_replays_across_single_and_batch_calls(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "seed")
    one = single(api, good("s1"))
    for atomic in (True, False):
        done = batch(api, [good("s1"), good(f"b-{atomic}")], atomic=atomic)
        assert done["results"][0]["replayed"] is True
        assert done["results"][0]["transaction"]["id"] == one["transaction"]["id"]
        # ... and a key a batch posted answers a single post, and another batch, as a replay.
        again = single(api, good(f"b-{atomic}"))
        assert again["replayed"] is True and again["transaction"]["id"] == done["results"][1]["transaction"]["id"]
        assert batch(api, [good(f"b-{atomic}")], atomic=not atomic)["results"][0]["replayed"] is True
        conflict = batch(api, [good("s1", 6)], atomic=atomic)
        if atomic:
            assert (conflict["index"], conflict["error"]["__typename"]) == (0, "IdempotencyConflict")
        else:
            assert conflict["results"][0]["__typename"] == "IdempotencyConflict"
    assert single(api, good("s1", 6))["__typename"] == "IdempotencyConflict"
    assert posted(api, WALLET_U2) == 15

    # A refusal in a batch that is not atomic is final for its key, as for a single post...
    spend = item("spend", [(WALLET_U1, "DEBIT", 500), (MERCHANT_M1, "CREDIT", 500)], kind="payment.direct")
    assert batch(api, [spend], atomic=False)["results"][0]["__typename"] == "InsufficientFunds"
    top_up(conn, WALLET_U1, 1000, "more")
    replayed = single(api, spend)
    assert replayed["__typename"] == "InsufficientFunds" and "transactions[" not in replayed["message"]
    # ... while an atomic refusal records nothing: the key is still free once the funds are there.
    spend2 = {**spend, "idempotencyKey": "spend2", "entries": [{**e, "amount": "5000"} for e in spend["entries"]]}
    assert batch(api, [spend2], atomic=True)["error"]["__typename"] == "InsufficientFunds"
    top_up(conn, WALLET_U1, 5000, "plenty")
    assert single(api, spend2)["__typename"] == "PostedTransaction"


def test_size_limits_and_an_empty_list(api, conn):
    open_book(conn)
    before = written(conn)
    for atomic in (True, False):
        empty = batch(api, [], atomic=atomic)
        assert (empty["__typename"], empty["field"]) == ("ValidationError", "transactions")
        over = batch(api, [good(f"o{i}") for i in range(1001)], atomic=atomic)
        assert (over["__typename"], over["field"]) == ("ValidationError", "transactions")
        assert "1000" in over["message"].replace(",", "")
    assert written(conn) == before
    # 1,000 transactions: a body well past body_bytes_max, which only postTransactions may send.
    transactions = [good(f"k{i:04}", 1) for i in range(1000)]
    assert len(json.dumps(transactions)) > Limits().body_bytes_max
    quick = "mutation($input: PostTransactionsInput!) { postTransactions(input: $input) { __typename " \
            "... on TransactionsPosted { postedCount results { ... on PostedTransaction { transaction { id } } } } } }"
    done = api.data(quick, {"input": {"atomic": True, "transactions": transactions}})["postTransactions"]
    assert done["postedCount"] == 1000 and len({r["transaction"]["id"] for r in done["results"]}) == 1000
    assert posted(api, WALLET_U2) == 1000


def test_a_large_body_is_only_for_post_transactions(api, conn):
    open_book(conn)
    pad = "x" * 150_000
    headers = {"Authorization": f"Bearer {api.token()}", "Content-Type": "application/json"}
    for query in ["{ __typename }", "mutation { __typename }",
                  "mutation($input: PostTransactionsInput!) { postTransactions(input: $input) { __typename } "
                  "other: postTransaction(input: {idempotencyKey: \"k\", kind: \"a\", entries: []}) { __typename } }",
                  "mutation { ...F } fragment F on Mutation { __typename }", "not graphql {"]:
        body = json.dumps({"query": query, "variables": {"pad": pad}})
        response = api.client.post("/graphql", content=body, headers=headers)
        assert response.status_code == 413, query
        assert response.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"
    # Only a caller who may post is read past the small limit; the others get 413 before it.
    batch_body = json.dumps({"query": "mutation($input: PostTransactionsInput!) { postTransactions(input: $input) "
                                      "{ __typename } }",
                             "variables": {"input": {"atomic": True, "transactions": [good("big")]}, "pad": pad}})
    for token in [api.token("auditor"), api.token("holder", "U2"), "not-a-token", ""]:
        others = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        response = api.client.post("/graphql", content=batch_body, headers=others)
        assert response.status_code == 413 and response.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"
    for role in ("operator", "admin"):
        answer = api.client.post("/graphql", content=batch_body, headers={
            "Authorization": f"Bearer {api.token(role)}", "Content-Type": "application/json"})
        assert answer.status_code == 200 and answer.json()["data"]["postTransactions"]["__typename"] == \
            "TransactionsPosted"
    assert written(conn)[0] == 1
    huge = json.dumps({"query": "mutation($input: PostTransactionsInput!) { postTransactions(input: $input) "
                                "{ __typename } }", "variables": {"pad": "x" * (Limits().batch_body_bytes_max + 1)}})
    assert api.client.post("/graphql", content=huge, headers=headers).status_code == 413
    # Within the larger limit, a malformed postTransactions call gets its typed error, never a 500.
    body = json.dumps({"query": "mutation($input: PostTransactionsInput!) { postTransactions(input: $input) "
                                "{ __typename } }",
                       "variables": {"input": {"atomic": True, "transactions": [
                           {**good("n"), "entries": [{"accountCode": BANK, "side": "DEBIT", "amount": 5}]}]},
                                     "pad": pad}})
    response = api.client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 200 and "MinorUnits" in response.json()["errors"][0]["message"]
    assert written(conn)[0] == 1  # the one batch above


def test_hostile_transactions_in_a_batch_are_typed_and_write_nothing(api, conn):
    open_book(conn)
    nul = api.errors(BATCH, {"input": {"atomic": True, "transactions": [good("fine"), {**good("nul"),
                                                                                      "description": "a\x00b"}]}})
    assert nul[0]["extensions"] == {"code": "VALIDATION", "field": "$input.transactions[1].description"}
    cases = [
        ({**good("k"), "idempotencyKey": ""}, "idempotencyKey"),
        ({**good("e"), "effectiveAt": "9000-01-01T00:00:00+00:00"}, "effectiveAt"),
        ({**good("m"), "metadata": [1, 2]}, "metadata"),
        ({**good("l"), "entries": [{"accountCode": BANK, "side": "DEBIT", "amount": "1"}]}, "entries"),
    ]
    for bad, field in cases:
        refused = batch(api, [good("fine"), bad], atomic=True)
        assert (refused["__typename"], refused["index"], refused["error"]["__typename"], refused["error"]["field"]) \
            == ("BatchRefused", 1, "ValidationError", field), refused
    assert written(conn)[0] == 0
    too_big = api.errors(BATCH, {"input": {"atomic": False, "transactions": [
        good("fine"), item("big", [(BANK, "DEBIT", 2**63), (WALLET_U2, "CREDIT", 2**63)])]}})
    assert too_big[0]["extensions"]["code"] == "BAD_USER_INPUT" and ".transactions[1].entries[0].amount" in \
        too_big[0]["message"]
    assert written(conn)[0] == 0


def test_roles_are_those_of_post_transaction(api, conn):
    open_book(conn)
    for role, holder in [("auditor", None), ("holder", "U2")]:
        for atomic in (True, False):
            assert batch(api, [good("r")], atomic=atomic, role=role, holder=holder)["__typename"] == "Forbidden"
    assert written(conn)[0] == 0
    assert batch(api, [good("o")], atomic=True, role="operator")["__typename"] == "TransactionsPosted"
    assert batch(api, [good("a")], atomic=False, role="admin")["__typename"] == "TransactionsPosted"


def _scrape(client):
    text = client.get("/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_batch_is_one_request_to_the_rate_limit_and_counts_its_postings(db_url, conn):
    open_book(conn)
    token = create_token(conn, "operator").token
    limits = Limits(requests_per_s_per_token=1, request_burst_per_token=3)
    with TestClient(create_app(db_url, limits=limits)) as client:
        def send(transactions):
            return client.post("/graphql", headers={"Authorization": f"Bearer {token}"}, json={
                "query": BATCH, "variables": {"input": {"atomic": False, "transactions": transactions}}})
        before = _scrape(client)
        first = send([good(f"t{i}") for i in range(50)] + [good("t0")])
        assert first.status_code == 200 and first.json()["data"]["postTransactions"]["postedCount"] == 50
        # The batch took one request of the burst of 3: two more pass (however fast they come).
        assert send([good("u")]).status_code == 200 and send([good("w")]).status_code == 200
        after = _scrape(client)
        # And the limit is there: sent back to back, requests soon find the bucket empty.
        statuses = [send([good("u")]).status_code for _ in range(30)]
        assert 429 in statuses
    moved = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    assert moved[("ledger_transactions_posted_total", (("replayed", "false"),))] == 52
    assert moved[("ledger_transactions_posted_total", (("replayed", "true"),))] == 1
    assert moved[("ledger_post_transactions_call_size_count", ())] == 3
