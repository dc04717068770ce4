"""Two-phase transfers: holds posted in full or in part, voided, expired; reversals; periods."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from book import BANK, MERCHANT_M1, WALLET_U1, open_book, spend, top_up

from ledger.accounts import Side
from ledger.balances import balance
from ledger.errors import (
    AlreadyReversed,
    HoldExpired,
    HoldNotFound,
    HoldNotPending,
    InsufficientFunds,
    PeriodClosed,
    TransactionNotFound,
    ValidationError,
)
from ledger.journal import HoldStatus, holds
from ledger.periods import close_period
from ledger.posting import Hold, Leg, PostHold, Reverse, Transfer, VoidHold, post_one


def _authorize(conn, amount=29900, key="auth", expires_at=None):
    return post_one(conn, Hold(key, "payment.authorize", [Leg(WALLET_U1, Side.DEBIT, amount),
                                                          Leg(MERCHANT_M1, Side.CREDIT, amount)],
                               expires_at=expires_at)).transaction_id


def test_a_hold_reserves_funds_on_the_available_balance(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100000, "t1")
    _authorize(conn)
    wallet = balance(conn, ids[WALLET_U1])
    assert (wallet.posted, wallet.pending, wallet.available) == (100000, 70100, 70100)
    merchant = balance(conn, ids[MERCHANT_M1])
    assert (merchant.posted, merchant.pending, merchant.available) == (0, 29900, 0)
    with pytest.raises(InsufficientFunds, match="70100 available, 70101 requested"):
        post_one(conn, spend(WALLET_U1, 70101, "too-much"))


def test_a_hold_cannot_reserve_more_than_is_available(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    with pytest.raises(InsufficientFunds, match="liabilities:wallets:U1 has 100 available, 101 requested"):
        _authorize(conn, amount=101)


def test_posting_a_hold_in_full(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100000, "t1")
    hold_id = _authorize(conn)
    post_one(conn, PostHold("capture", hold_id))
    wallet = balance(conn, ids[WALLET_U1])
    assert (wallet.posted, wallet.pending, wallet.available) == (70100, 70100, 70100)
    assert balance(conn, ids[MERCHANT_M1]).posted == 29900
    assert holds(conn, [hold_id])[hold_id].status is HoldStatus.POSTED


def test_posting_part_of_a_hold_releases_the_rest(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100000, "t1")
    hold_id = _authorize(conn)
    post_one(conn, PostHold("capture", hold_id, amount=20000))
    wallet = balance(conn, ids[WALLET_U1])
    assert (wallet.posted, wallet.pending, wallet.available) == (80000, 80000, 80000)
    assert balance(conn, ids[MERCHANT_M1]).posted == 20000


def test_posting_more_than_the_hold_is_refused(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100000, "t1")
    hold_id = _authorize(conn)
    with pytest.raises(ValidationError, match="exceeds hold"):
        post_one(conn, PostHold("capture", hold_id, amount=29901))


def test_a_hold_resolves_once(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100000, "t1")
    hold_id = _authorize(conn)
    post_one(conn, PostHold("capture", hold_id, amount=100))
    with pytest.raises(HoldNotPending, match="already posted or voided"):
        post_one(conn, PostHold("capture-again", hold_id, amount=100))
    with pytest.raises(HoldNotPending, match=f"hold {hold_id} was already posted or voided"):
        post_one(conn, VoidHold("void", hold_id))
    # A retry of the first request is a replay, not a second posting.
    assert post_one(conn, PostHold("capture", hold_id, amount=100)).replayed


def test_voiding_releases_the_hold(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100000, "t1")
    hold_id = _authorize(conn)
    post_one(conn, VoidHold("void", hold_id))
    wallet = balance(conn, ids[WALLET_U1])
    assert (wallet.posted, wallet.pending, wallet.available) == (100000, 100000, 100000)
    assert holds(conn, [hold_id])[hold_id].status is HoldStatus.VOIDED


def test_an_expired_hold_stops_counting_and_cannot_be_posted(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100000, "t1")
    expires_at = datetime.now(UTC) + timedelta(seconds=3)
    hold_id = _authorize(conn, expires_at=expires_at)
    assert balance(conn, ids[WALLET_U1]).available == 70100
    time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.2)
    assert balance(conn, ids[WALLET_U1]).available == 100000
    assert holds(conn, [hold_id])[hold_id].status is HoldStatus.EXPIRED
    post_one(conn, spend(WALLET_U1, 100000, "all"))  # the expired hold no longer reserves anything
    with pytest.raises(HoldExpired, match="expired"):
        post_one(conn, PostHold("late-capture", hold_id))
    post_one(conn, VoidHold("void", hold_id))  # an expired hold can still be voided (cleans the pending layer)
    assert balance(conn, ids[WALLET_U1]).pending == 0


def test_hold_expiry_must_be_within_the_lifetime(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100000, "t1")
    with pytest.raises(ValidationError, match="must expire") as caught:
        _authorize(conn, expires_at=datetime.now(UTC) + timedelta(days=31))
    assert caught.value.field == "expiresAt"
    with pytest.raises(ValidationError, match="must expire"):
        _authorize(conn, expires_at=datetime.now(UTC) - timedelta(seconds=1))


def test_unknown_holds_and_transactions(conn):
    open_book(conn)
    transfer = top_up(conn, WALLET_U1, 100, "t1")
    with pytest.raises(HoldNotFound, match="no hold 999"):
        post_one(conn, PostHold("x", 999))
    with pytest.raises(HoldNotFound, match="is not a hold"):
        post_one(conn, VoidHold("x2", transfer))  # a refused key keeps its refusal: a new key
    with pytest.raises(TransactionNotFound, match="no transaction 999"):
        post_one(conn, Reverse("x3", 999))


def test_reversal_posts_the_opposite_once_and_points_back(conn):
    ids = open_book(conn)
    original = top_up(conn, WALLET_U1, 100, "t1")
    reversal = post_one(conn, Reverse("undo", original, description="entered twice")).transaction_id
    assert balance(conn, ids[WALLET_U1]).posted == 0
    assert balance(conn, ids[BANK]).posted == 0
    row = conn.execute("select reverses_id from ledger.transactions where id = %s", (reversal,)).fetchone()
    assert row[0] == original
    with pytest.raises(AlreadyReversed, match="already reversed"):
        post_one(conn, Reverse("undo-again", original))


def test_a_reversal_respects_limits(conn):
    open_book(conn)
    original = top_up(conn, WALLET_U1, 100, "t1")
    post_one(conn, spend(WALLET_U1, 60, "s1"))
    with pytest.raises(InsufficientFunds, match="liabilities:wallets:U1 has 40 available, 100 requested"):
        post_one(conn, Reverse("undo", original))


def test_a_closed_period_takes_no_postings(conn):
    open_book(conn)
    now = datetime.now(UTC)
    close_period(conn, now - timedelta(days=30))
    with pytest.raises(PeriodClosed, match="closed period"):
        post_one(conn, Transfer("old", "wallet.top_up", [Leg(BANK, Side.DEBIT, 1), Leg(WALLET_U1, Side.CREDIT, 1)],
                                effective_at=now - timedelta(days=31)))
    post_one(conn, Transfer("new", "wallet.top_up", [Leg(BANK, Side.DEBIT, 1), Leg(WALLET_U1, Side.CREDIT, 1)],
                            effective_at=now - timedelta(days=29)))
    with pytest.raises(PeriodClosed, match="already closed"):
        close_period(conn, now - timedelta(days=40))
    with pytest.raises(ValidationError, match="has not ended"):
        close_period(conn, now + timedelta(days=1))
