"""Rules at their exact edges: instants (a hold at its expiry, an entry at a period's start, a
posting at a close, a cut at a recording), one past a bound (batch size, hold lifetime), and the
direction a limit applies in. The engine's functions take `now` as an argument, so the tests pass
the very instant a rule turns on instead of racing the clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from book import BANK, CAPPED, MERCHANT_M1, WALLET_U1, WALLET_U2, open_book, top_up

from ledger.accounts import Side
from ledger.errors import IdempotencyConflict, InsufficientFunds, LimitExceeded, PeriodClosed, ValidationError
from ledger.periods import close_period
from ledger.posting import Hold, Leg, PostHold, Reverse, Transfer, batch_size_max, post, post_one
from ledger.statements import statement_page, statement_totals

T = datetime(2026, 6, 1, 12, tzinfo=UTC)
US = timedelta(microseconds=1)
LEGS = [{"account": BANK, "side": "debit", "amount": 5}, {"account": WALLET_U1, "side": "credit", "amount": 5}]


def _request(**fields):
    return {"key": fields.pop("key", "k"), "kind": "test.edge", **fields}


def _parse(conn, requests, now):
    return conn.execute("select r.expires_at from unnest(ledger.parse_requests(%s, %s)) r",
                        (json.dumps(requests), now)).fetchall()


def _refused(sqlstate, match, conn, query, params):
    with pytest.raises(psycopg.Error, match=match) as caught:
        conn.execute(query, params)
    assert caught.value.sqlstate == sqlstate


def _setting(conn, name):
    return conn.execute("select value from ledger.settings where name = %s", (name,)).fetchone()[0]


def test_a_hold_must_expire_after_the_instant_it_is_made(conn):
    hold = _request(op="hold", legs=LEGS, effective_at=T.isoformat())
    _refused("LD001", "must expire after now", conn, "select ledger.parse_requests(%s, %s)",
             (json.dumps([{**hold, "expires_at": T.isoformat()}]), T))
    assert _parse(conn, [{**hold, "expires_at": (T + US).isoformat()}], T) == [(T + US,)]


def test_a_hold_lives_at_most_the_lifetime_and_by_default_exactly_that(conn):
    lifetime = timedelta(days=int(_setting(conn, "hold_lifetime_max").split()[0]))
    hold = _request(op="hold", legs=LEGS, effective_at=T.isoformat())
    assert _parse(conn, [hold], T) == [(T + lifetime,)]
    assert _parse(conn, [{**hold, "expires_at": (T + lifetime).isoformat()}], T) == [(T + lifetime,)]
    _refused("LD001", "must expire after now and within", conn, "select ledger.parse_requests(%s, %s)",
             (json.dumps([{**hold, "expires_at": (T + lifetime + US).isoformat()}]), T))


def test_a_hold_takes_effect_when_it_is_made(conn):
    """Within five minutes of now either way; a day away is refused, on the effective time."""
    for offset in (timedelta(minutes=5), -timedelta(minutes=5)):
        assert len(_parse(conn, [_request(op="hold", legs=LEGS, effective_at=(T + offset).isoformat())], T)) == 1
    for offset in (timedelta(days=1), -timedelta(days=1), timedelta(minutes=5) + US):
        _refused("LD001", "a hold takes effect when it is made", conn, "select ledger.parse_requests(%s, %s)",
                 (json.dumps([_request(op="hold", legs=LEGS, effective_at=(T + offset).isoformat())]), T))
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100, "fund")
    with pytest.raises(ValidationError, match="takes effect when it is made") as caught:
        post_one(conn, Hold("h", "payment.authorize", [Leg(WALLET_U1, Side.DEBIT, 10), Leg(MERCHANT_M1, Side.CREDIT, 10)],
                            effective_at=datetime.now(UTC) - timedelta(days=1)))
    assert caught.value.details["field"] == "effectiveAt"
    assert ids


def test_a_transfer_takes_no_expiry(conn):
    _refused("LD001", "transfer takes legs", conn, "select ledger.parse_requests(%s, %s)",
             (json.dumps([_request(op="transfer", legs=LEGS, expires_at=(T + US).isoformat())]), T))


def test_a_batch_holds_at_most_the_batch_size(conn):
    size_max = int(_setting(conn, "batch_size_max"))
    batch = [_request(key=f"k{n}", op="transfer", legs=LEGS) for n in range(size_max)]
    assert len(_parse(conn, batch, T)) == size_max
    _refused("LD001", f"at most {size_max} requests, got {size_max + 1}", conn,
             "select ledger.parse_requests(%s, %s)", (json.dumps(batch + [_request(key="one-more", op="transfer",
                                                                                   legs=LEGS)]), T))


def _hold(conn, amount=30, legs=None, key="h"):
    legs = legs or [Leg(WALLET_U1, Side.DEBIT, amount), Leg(MERCHANT_M1, Side.CREDIT, amount)]
    hold_id = post_one(conn, Hold(key, "payment.authorize", legs,
                                  expires_at=datetime.now(UTC) + timedelta(hours=1))).transaction_id
    expires_at = conn.execute("select expires_at from ledger.transactions where id = %s", (hold_id,)).fetchone()[0]
    return hold_id, expires_at


def test_a_hold_cannot_be_posted_at_its_expiry_instant(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "fund")
    hold_id, expires_at = _hold(conn)
    post = json.dumps([_request(op="post_hold", target_id=hold_id)])
    query = "select ledger.derived_legs(ledger.parse_requests(%s, %s), %s)"
    assert conn.execute(query, (post, expires_at - US, expires_at - US)).fetchone()[0]
    _refused("LD012", f"hold {hold_id} expired", conn, query, (post, expires_at, expires_at))


def test_a_hold_stops_reserving_at_its_expiry_instant(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100, "fund")
    _, expires_at = _hold(conn)
    query = "select s.out_active from unnest(ledger.account_states(array[%s]::bigint[], %s)) s"
    assert conn.execute(query, (ids[WALLET_U1], expires_at - US)).fetchone()[0] == 30
    assert conn.execute(query, (ids[WALLET_U1], expires_at)).fetchone()[0] == 0


def test_only_a_two_leg_hold_is_posted_in_part_and_never_for_zero(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100, "fund")
    three, _ = _hold(conn, legs=[Leg(WALLET_U1, Side.DEBIT, 30), Leg(MERCHANT_M1, Side.CREDIT, 20),
                                 Leg(WALLET_U2, Side.CREDIT, 10)], key="three")
    with pytest.raises(ValidationError, match="only a two-leg hold can be posted in part") as caught:
        post_one(conn, PostHold("part", three, amount=10))
    assert caught.value.details["field"] == "amount"
    two, _ = _hold(conn, key="two")
    _refused("LD001", "amount to post must be positive, got 0", conn, "select ledger.post_batch(%s)",
             (json.dumps([_request(op="post_hold", target_id=two, amount=0)]),))
    assert post_one(conn, PostHold("all", three)).replayed is False
    assert ids


def test_a_replay_must_match_in_effective_time_and_posted_amount(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "fund")
    legs = [Leg(BANK, Side.DEBIT, 5), Leg(WALLET_U1, Side.CREDIT, 5)]
    post_one(conn, Transfer("dated", "wallet.top_up", legs, effective_at=T))
    assert post_one(conn, Transfer("dated", "wallet.top_up", legs, effective_at=T)).replayed
    with pytest.raises(IdempotencyConflict, match="already used for a different request"):
        post_one(conn, Transfer("dated", "wallet.top_up", legs, effective_at=T + US))
    hold_id, _ = _hold(conn)
    post_one(conn, PostHold("part", hold_id, amount=10))
    assert post_one(conn, PostHold("part", hold_id, amount=10)).replayed
    with pytest.raises(IdempotencyConflict, match="already used for a different request"):
        post_one(conn, PostHold("part", hold_id, amount=11))


def test_an_incoming_hold_counts_against_the_highest_balance(conn):
    open_book(conn)
    post_one(conn, Hold("in", "wallet.top_up", [Leg(BANK, Side.DEBIT, 800), Leg(CAPPED, Side.CREDIT, 800)],
                        expires_at=datetime.now(UTC) + timedelta(hours=1)))
    with pytest.raises(LimitExceeded, match="would reach 1100; its balance may not exceed 1000"):
        post_one(conn, Transfer("more", "wallet.top_up", [Leg(BANK, Side.DEBIT, 300), Leg(CAPPED, Side.CREDIT, 300)]))
    post_one(conn, Transfer("fits", "wallet.top_up", [Leg(BANK, Side.DEBIT, 200), Leg(CAPPED, Side.CREDIT, 200)]))


def test_a_limit_refuses_only_moves_in_its_direction(conn):
    """An account already past a limit (the limit was set later) may move back towards it, even
    if it stays past it; a move further away is refused."""
    ids = open_book(conn)
    post_one(conn, Transfer("fill", "wallet.top_up", [Leg(BANK, Side.DEBIT, 900), Leg(CAPPED, Side.CREDIT, 900)]))
    conn.execute("update ledger.accounts set min_balance = 1000, max_balance = null where id = %s", (ids[CAPPED],))
    post_one(conn, Transfer("towards-min", "wallet.top_up", [Leg(BANK, Side.DEBIT, 50), Leg(CAPPED, Side.CREDIT, 50)]))
    with pytest.raises(InsufficientFunds, match="may not go below 1000"):
        post_one(conn, Transfer("down", "payment.direct", [Leg(CAPPED, Side.DEBIT, 50), Leg(BANK, Side.CREDIT, 50)]))
    conn.execute("update ledger.accounts set min_balance = null, max_balance = 500 where id = %s", (ids[CAPPED],))
    post_one(conn, Transfer("towards-max", "payment.direct", [Leg(CAPPED, Side.DEBIT, 50), Leg(BANK, Side.CREDIT, 50)]))
    with pytest.raises(LimitExceeded, match="would reach 950; its balance may not exceed 500"):
        post_one(conn, Transfer("up", "wallet.top_up", [Leg(BANK, Side.DEBIT, 50), Leg(CAPPED, Side.CREDIT, 50)]))


def test_a_posting_at_the_close_instant_is_refused_and_one_after_it_taken(conn):
    open_book(conn)
    close_period(conn, T)
    legs = [Leg(BANK, Side.DEBIT, 5), Leg(WALLET_U1, Side.CREDIT, 5)]
    with pytest.raises(PeriodClosed, match="lies in a closed period"):
        post_one(conn, Transfer("at", "wallet.top_up", legs, effective_at=T))
    post_one(conn, Transfer("after", "wallet.top_up", legs, effective_at=T + US))


def test_a_period_closes_once_and_only_once_it_has_ended(conn):
    close_period(conn, T)
    with pytest.raises(PeriodClosed, match="already closed until"):
        close_period(conn, T)
    with pytest.raises(ValidationError, match="has not ended") as caught:
        close_period(conn, datetime.now(UTC) + timedelta(hours=1))
    assert caught.value.details["field"] == "until"


def test_entries_on_a_statements_edges(conn):
    """An entry at `from` is the first line, not in the opening balance; one at `to` belongs to
    the next period; an entry recorded at the cut is known at it."""
    ids = open_book(conn)
    edges = [Transfer(key, "wallet.top_up", [Leg(BANK, Side.DEBIT, amount), Leg(WALLET_U1, Side.CREDIT, amount)],
                      effective_at=at)
             for key, amount, at in (("before", 1, T - US), ("start", 10, T), ("end", 100, T + timedelta(days=1)))]
    for request in edges:
        post_one(conn, request)
    recorded = conn.execute("select max(recorded_at) from ledger.entries").fetchone()[0]
    page = statement_page(conn, ids[WALLET_U1], "CNY", T, T + timedelta(days=1), known_at=recorded)
    assert [(line.amount, line.running_balance) for line in page.lines] == [(10, 11)]
    totals = statement_totals(conn, ids[WALLET_U1], T, T + timedelta(days=1), recorded)
    assert (totals.opening, totals.closing, totals.total_credits) == (1, 11, 10)
    before_last = statement_page(conn, ids[WALLET_U1], "CNY", T + timedelta(days=1), T + timedelta(days=2),
                                 known_at=recorded - US)
    assert before_last.lines == []
    known = "select ledger.version_known_at(%s, %s)"
    assert conn.execute(known, (ids[WALLET_U1], recorded)).fetchone()[0] == 3
    for version in (1, 2):
        at = conn.execute("select recorded_at from ledger.entries where account_id = %s and account_version = %s",
                          (ids[WALLET_U1], version)).fetchone()[0]
        assert conn.execute(known, (ids[WALLET_U1], at)).fetchone()[0] == version
        assert conn.execute(known, (ids[WALLET_U1], at - US)).fetchone()[0] == version - 1


def test_only_posted_legs_are_reversed(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "fund")
    hold_id, _ = _hold(conn)
    with pytest.raises(ValidationError, match=f"transaction {hold_id} has no posted legs to reverse"):
        post_one(conn, Reverse("undo-hold", hold_id))


def test_the_python_layer_refuses_a_batch_one_past_the_size(conn):
    legs = [Leg(BANK, Side.DEBIT, 1), Leg(WALLET_U1, Side.CREDIT, 1)]
    batch = [Transfer(f"k{n}", "wallet.top_up", legs) for n in range(batch_size_max + 1)]
    with pytest.raises(ValidationError, match=f"at most {batch_size_max} requests, got {batch_size_max + 1}") as caught:
        post(conn, batch)
    assert caught.value.details["field"] == "batch"


def test_a_hold_of_everything_available_posts_and_voids(conn):
    """Resolving a hold frees its reservation in the same check that counts its postings, so a hold
    of the whole available balance can be posted (and another one voided)."""
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100, "fund")
    hold_id, _ = _hold(conn, amount=100)
    post_one(conn, PostHold("all", hold_id))
    top_up(conn, WALLET_U1, 100, "again")
    other, _ = _hold(conn, amount=100, key="other")
    post_one(conn, PostHold("part", other, amount=60))
    assert conn.execute("select posted_credits - posted_debits from ledger.balances where account_id = %s",
                        (ids[WALLET_U1],)).fetchone()[0] == 40
