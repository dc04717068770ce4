"""An expired hold nobody voided yet reserves nothing: it leaves pending as it leaves available,
now, as of a time after its expiry, and on both sides of the hold."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from book import MERCHANT_M1, WALLET_U1, open_book, top_up

from ledger.accounts import Side
from ledger.balances import balance, balances_now
from ledger.posting import Hold, Leg, VoidHold, post_one


def test_an_expired_hold_leaves_pending(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 1000, "t1")
    expires_at = datetime.now(UTC) + timedelta(seconds=2)
    post_one(conn, Hold("auth", "payment.authorize", [Leg(WALLET_U1, Side.DEBIT, 300),
                                                      Leg(MERCHANT_M1, Side.CREDIT, 300)], expires_at=expires_at))
    before_expiry = datetime.now(UTC)
    wallet, merchant = balance(conn, ids[WALLET_U1]), balance(conn, ids[MERCHANT_M1])
    assert (wallet.posted, wallet.pending, wallet.available) == (1000, 700, 700)
    assert (merchant.posted, merchant.pending) == (0, 300)
    time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.2)

    now = balances_now(conn, [ids[WALLET_U1], ids[MERCHANT_M1]])
    assert (now[ids[WALLET_U1]].pending, now[ids[WALLET_U1]].available) == (1000, 1000)
    assert now[ids[MERCHANT_M1]].pending == 0
    after = datetime.now(UTC)
    assert balance(conn, ids[WALLET_U1], as_of=after).pending == 1000
    assert balance(conn, ids[MERCHANT_M1], as_of=after).pending == 0
    # As of a time before it expired, it still counted.
    assert balance(conn, ids[WALLET_U1], as_of=before_expiry).pending == 700
    assert balance(conn, ids[MERCHANT_M1], as_of=before_expiry).pending == 300
    assert balance(conn, ids[WALLET_U1], as_of=after, known_at=after).pending == 1000

    post_one(conn, VoidHold("void", 2))  # the hold is transaction 2 of this book
    assert balance(conn, ids[WALLET_U1]).pending == 1000
