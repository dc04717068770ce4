"""The posting engine through the Python API: transfers, replays, validation, limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from book import BANK, CAPPED, MERCHANT_M1, USD_BANK, WALLET_U1, WALLET_U2, open_book, spend, top_up

from ledger.account_lifecycle import set_status
from ledger.accounts import AccountStatus, Side
from ledger.balances import balance
from ledger.errors import (
    AccountFrozen,
    AccountNotFound,
    CurrencyMismatch,
    IdempotencyConflict,
    InsufficientFunds,
    LimitExceeded,
    UnbalancedTransaction,
    ValidationError,
    translate,
)
from ledger.journal import entries_of_transactions, get_transactions
from ledger.posting import Leg, Transfer, post, post_one


def _journal_size(conn) -> tuple[int, int]:
    row = conn.execute("select (select count(*) from ledger.transactions), (select count(*) from ledger.entries)").fetchone()
    return row[0], row[1]


def test_a_transfer_moves_both_balances_on_their_normal_sides(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100000, "t1")
    assert balance(conn, ids[WALLET_U1]).posted == 100000
    assert balance(conn, ids[BANK]).posted == 100000
    posted = post_one(conn, spend(WALLET_U1, 29900, "p1"))
    assert not posted.replayed
    assert balance(conn, ids[WALLET_U1]).posted == 70100
    assert balance(conn, ids[MERCHANT_M1]).posted == 29900


def test_entries_record_version_balance_after_and_the_transaction(conn):
    ids = open_book(conn)
    first = top_up(conn, WALLET_U1, 500, "t1")
    second = top_up(conn, WALLET_U1, 700, "t2")
    entries = entries_of_transactions(conn, [first, second])
    wallet_entries = [e for t in (first, second) for e in entries[t] if e.account_id == ids[WALLET_U1]]
    assert [(e.account_version, e.posted_balance_after) for e in wallet_entries] == [(1, 500), (2, 1200)]
    transaction = get_transactions(conn, [second])[second]
    assert transaction.kind == "wallet.top_up" and transaction.idempotency_key == "t2"


def test_replay_with_the_same_request_returns_the_original_and_writes_nothing(conn):
    open_book(conn)
    first = post_one(conn, Transfer("k", "wallet.top_up", [Leg(BANK, Side.DEBIT, 10), Leg(WALLET_U1, Side.CREDIT, 10)]))
    size = _journal_size(conn)
    again = post_one(conn, Transfer("k", "wallet.top_up", [Leg(BANK, Side.DEBIT, 10), Leg(WALLET_U1, Side.CREDIT, 10)]))
    assert again.transaction_id == first.transaction_id and again.replayed
    assert _journal_size(conn) == size


def test_replay_with_a_different_request_is_refused(conn):
    open_book(conn)
    post_one(conn, Transfer("k", "wallet.top_up", [Leg(BANK, Side.DEBIT, 10), Leg(WALLET_U1, Side.CREDIT, 10)]))
    size = _journal_size(conn)
    with pytest.raises(IdempotencyConflict, match="already used for a different request"):
        post_one(conn, Transfer("k", "wallet.top_up", [Leg(BANK, Side.DEBIT, 11), Leg(WALLET_U1, Side.CREDIT, 11)]))
    assert _journal_size(conn) == size


@pytest.mark.parametrize("amount, message", [
    (0, "must be positive"),
    (-5, "must be positive"),
    (1.5, "must be an integer"),
    (10.0, "must be an integer"),
    (True, "must be an integer"),
    ("12.5", "written in digits"),
    ("1e3", "written in digits"),
    (None, "must be an integer"),
    (2**63, "does not fit in 64 bits"),
    (2**70, "does not fit in 64 bits"),
])
def test_bad_amounts_are_refused_and_write_nothing(conn, amount, message):
    open_book(conn)
    with pytest.raises(ValidationError, match=message) as caught:
        post_one(conn, Transfer("bad", "wallet.top_up", [Leg(BANK, Side.DEBIT, amount), Leg(WALLET_U1, Side.CREDIT, amount)]))
    assert caught.value.field == "amount"
    assert _journal_size(conn) == (0, 0)


def test_the_largest_64_bit_amount_posts(conn):
    ids = open_book(conn)
    big = 2**63 - 1
    post_one(conn, Transfer("big", "test.big", [Leg(BANK, Side.DEBIT, big), Leg(MERCHANT_M1, Side.CREDIT, big)]))
    assert balance(conn, ids[MERCHANT_M1]).posted == big


def test_a_sum_past_64_bits_is_refused_with_nothing_written(conn):
    open_book(conn)
    big = 2**63 - 1
    post_one(conn, Transfer("big", "test.big", [Leg(BANK, Side.DEBIT, big), Leg(MERCHANT_M1, Side.CREDIT, big)]))
    size = _journal_size(conn)
    with pytest.raises(ValidationError, match="past 64 bits") as refused:
        post_one(conn, Transfer("more", "test.big", [Leg(BANK, Side.DEBIT, 1), Leg(MERCHANT_M1, Side.CREDIT, 1)]))
    assert refused.value.field == "entries"
    assert _journal_size(conn) == size


@pytest.mark.parametrize("legs, error, message", [
    # The engine's own check refuses, naming the request: the commit trigger is only a backstop.
    ([Leg(BANK, Side.DEBIT, 10), Leg(WALLET_U1, Side.CREDIT, 9)], UnbalancedTransaction,
     "request 1 does not balance: CNY debits - credits = 1"),
    ([Leg(BANK, Side.DEBIT, 9), Leg(WALLET_U1, Side.CREDIT, 10)], UnbalancedTransaction,
     "request 1 does not balance: CNY debits - credits = -1"),
    ([Leg(BANK, Side.DEBIT, 10)], ValidationError, "between 2 and 100 legs"),
    ([Leg(BANK, Side.DEBIT, 10), Leg("liabilities:wallets:NOPE", Side.CREDIT, 10)], AccountNotFound,
     "no account with code liabilities:wallets:NOPE"),
    ([Leg(USD_BANK, Side.DEBIT, 10), Leg(WALLET_U1, Side.CREDIT, 10)], CurrencyMismatch, "mixes currencies"),
    ([Leg(BANK, Side.DEBIT, 10), Leg(WALLET_U1, Side.CREDIT, 10, currency="USD")], CurrencyMismatch, "is in CNY, the leg in USD"),
    ([Leg(BANK, "sideways", 10), Leg(WALLET_U1, Side.CREDIT, 10)], ValidationError, "side must be debit or credit"),
])
def test_malformed_transactions_get_typed_errors_and_write_nothing(conn, legs, error, message):
    open_book(conn)
    with pytest.raises(error, match=message):
        post_one(conn, Transfer("x", "test.bad", legs))
    assert _journal_size(conn) == (0, 0)


def test_too_many_legs_are_refused(conn):
    open_book(conn)
    legs = [Leg(BANK, Side.DEBIT, 1)] * 100 + [Leg(WALLET_U1, Side.CREDIT, 100)]
    with pytest.raises(ValidationError, match="between 2 and 100 legs"):
        post_one(conn, Transfer("x", "test.bad", legs))


def test_a_hundred_legs_post(conn):
    ids = open_book(conn)
    legs = [Leg(BANK, Side.DEBIT, 1)] * 99 + [Leg(WALLET_U1, Side.CREDIT, 99)]
    post_one(conn, Transfer("x", "test.many", legs))
    assert balance(conn, ids[BANK]).posted == 99 and balance(conn, ids[BANK]).version == 99


@pytest.mark.parametrize("field, transfer", [
    ("idempotencyKey", Transfer("", "wallet.top_up", [Leg(BANK, Side.DEBIT, 1), Leg(WALLET_U1, Side.CREDIT, 1)])),
    ("kind", Transfer("k", "Not A Kind", [Leg(BANK, Side.DEBIT, 1), Leg(WALLET_U1, Side.CREDIT, 1)])),
    ("effectiveAt", Transfer("k", "wallet.top_up", [Leg(BANK, Side.DEBIT, 1), Leg(WALLET_U1, Side.CREDIT, 1)],
                             effective_at=datetime(2026, 1, 1))),
    ("metadata", Transfer("k", "wallet.top_up", [Leg(BANK, Side.DEBIT, 1), Leg(WALLET_U1, Side.CREDIT, 1)],
                          metadata={"x": object()})),
])
def test_bad_fields_name_the_field(conn, field, transfer):
    open_book(conn)
    with pytest.raises(ValidationError) as caught:
        post_one(conn, transfer)
    assert caught.value.field == field


def test_the_lowest_balance_holds(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    with pytest.raises(InsufficientFunds, match="liabilities:wallets:U1 has 100 available, 101 requested"):
        post_one(conn, spend(WALLET_U1, 101, "p1"))
    post_one(conn, spend(WALLET_U1, 100, "p2"))
    assert balance(conn, ids[WALLET_U1]).posted == 0


def test_the_highest_balance_holds(conn):
    open_book(conn)
    top_up(conn, CAPPED, 1000, "t1")
    with pytest.raises(LimitExceeded, match="may not exceed 1000"):
        top_up(conn, CAPPED, 1, "t2")


def test_a_batch_is_checked_in_order_and_is_all_or_nothing(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    # Spending 60 then 60 fails on the second; a top-up after it cannot rescue it.
    with pytest.raises(InsufficientFunds, match="request 2"):
        post(conn, [spend(WALLET_U1, 60, "a"), spend(WALLET_U1, 60, "b"),
                    Transfer("c", "wallet.top_up", [Leg(BANK, Side.DEBIT, 100), Leg(WALLET_U1, Side.CREDIT, 100)])])
    assert balance(conn, ids[WALLET_U1]).posted == 100
    # The top-up first, then both spends: fine (under a new key for the refused one: a refusal
    # is final for its key).
    results = post(conn, [Transfer("c", "wallet.top_up", [Leg(BANK, Side.DEBIT, 100), Leg(WALLET_U1, Side.CREDIT, 100)]),
                          spend(WALLET_U1, 60, "a"), spend(WALLET_U1, 60, "b2")])
    assert [r.replayed for r in results] == [False, False, False]
    assert balance(conn, ids[WALLET_U1]).posted == 80


def test_a_batch_answers_replays_and_new_requests_together(conn):
    open_book(conn)
    first = top_up(conn, WALLET_U1, 100, "t1")
    results = post(conn, [Transfer("t1", "wallet.top_up", [Leg(BANK, Side.DEBIT, 100), Leg(WALLET_U1, Side.CREDIT, 100)]),
                          spend(WALLET_U1, 10, "s1")])
    assert results[0].transaction_id == first and results[0].replayed
    assert not results[1].replayed


def test_a_key_twice_in_one_batch_is_refused(conn):
    open_book(conn)
    with pytest.raises(ValidationError, match="appears twice"):
        post(conn, [spend(WALLET_U1, 1, "same"), spend(WALLET_U2, 1, "same")])


def test_a_frozen_account_takes_no_postings_and_the_change_is_recorded(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    set_status(conn, WALLET_U1, AccountStatus.FROZEN, "fraud review")
    with pytest.raises(AccountFrozen, match="liabilities:wallets:U1 is frozen"):
        post_one(conn, spend(WALLET_U1, 1, "p1"))
    set_status(conn, WALLET_U1, AccountStatus.OPEN, "cleared")
    post_one(conn, spend(WALLET_U1, 1, "p2"))  # "p1" keeps its refusal
    history = conn.execute(
        "select status, reason from ledger.account_status_changes where account_id = %s order by id",
        (ids[WALLET_U1],)).fetchall()
    assert history == [("open", "created"), ("frozen", "fraud review"), ("open", "cleared")]


def test_effective_time_may_be_backdated_and_only_a_little_in_the_future(conn):
    open_book(conn)
    past = datetime.now(UTC) - timedelta(days=400)
    five = [Leg(BANK, Side.DEBIT, 5), Leg(WALLET_U1, Side.CREDIT, 5)]
    post_one(conn, Transfer("old", "wallet.top_up", five, effective_at=past))
    soon = datetime.now(UTC) + timedelta(days=6)
    post_one(conn, Transfer("soon", "wallet.top_up", five, effective_at=soon))
    far = datetime.now(UTC) + timedelta(days=8)
    with pytest.raises(ValidationError, match="in the future") as caught:
        post_one(conn, Transfer("far", "wallet.top_up", five, effective_at=far))
    assert caught.value.field == "effectiveAt"


def test_a_batch_touching_hundreds_of_accounts_posts_and_notifies_in_parts(conn):
    from ledger.accounts import AccountType, NewAccount, create_account

    open_book(conn)
    codes = [f"liabilities:wallets:N{i}" for i in range(700)]
    for code in codes:
        create_account(conn, NewAccount(code, code, AccountType.LIABILITY, "CNY"))
    conn.execute("listen ledger_balances")
    post(conn, [Transfer(f"n{i}", "wallet.top_up", [Leg(BANK, Side.DEBIT, 1), Leg(code, Side.CREDIT, 1)])
                for i, code in enumerate(codes)])
    notified = set()
    for notify in conn.notifies(timeout=2, stop_after=20):
        notified.update(int(i) for i in notify.payload.split(","))
        if len(notified) == 701:
            break
    assert len(notified) == 701


@pytest.mark.parametrize("legs", [
    [(BANK, Side.DEBIT, 5), (BANK, Side.CREDIT, 5)],
    [(BANK, Side.DEBIT, 5), (WALLET_U1, Side.CREDIT, 5), (WALLET_U1, Side.DEBIT, 5), (BANK, Side.CREDIT, 5)],
])
def test_a_transaction_that_moves_nothing_is_refused(conn, legs):
    open_book(conn)
    with pytest.raises(ValidationError, match="moves nothing") as in_python:
        post_one(conn, Transfer("nothing", "wallet.top_up", [Leg(*leg) for leg in legs]))
    assert in_python.value.field == "entries"
    batch = [{"op": "transfer", "key": "nothing", "kind": "wallet.top_up", "metadata": {},
              "legs": [{"account": a, "side": s.value, "amount": n} for a, s, n in legs]}]
    with pytest.raises(psycopg.Error) as in_engine:
        conn.execute("select ledger.post_batch(%s::jsonb)", (json.dumps(batch),))
    error = translate(in_engine.value)
    assert isinstance(error, ValidationError) and error.field == "entries" and "moves nothing" in error.message
    assert conn.execute("select count(*) from ledger.transactions").fetchone()[0] == 0
