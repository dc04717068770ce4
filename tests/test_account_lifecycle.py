"""Account lifecycle in the core: every status transition, closing only when empty, limits that
bind later postings, the history of both, and a close racing a posting."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from book import BANK, CAPPED, WALLET_U1, open_book, spend, top_up

from ledger.account_lifecycle import limit_history, set_limits, set_status, status_history
from ledger.accounts import AccountStatus, Side, get_account
from ledger.errors import (
    AccountFrozen,
    AccountNotEmpty,
    AccountNotFound,
    InsufficientFunds,
    LimitExceeded,
    StatusTransitionRefused,
    ValidationError,
)
from ledger.posting import Hold, Leg, VoidHold, post_one

OPEN, FROZEN, CLOSED = AccountStatus.OPEN, AccountStatus.FROZEN, AccountStatus.CLOSED


def _put_in(conn: psycopg.Connection[Any], status: AccountStatus) -> None:
    """Bring the (empty) wallet U1 to `status` from open."""
    if status is not OPEN:
        set_status(conn, WALLET_U1, status, "setting up")


def _history_length(conn: psycopg.Connection[Any]) -> int:
    return len(status_history(conn, get_account(conn, WALLET_U1).id))


# Every (from, to): allowed ones change the status and add one history row; the same status writes
# nothing; closed -> frozen is refused.
@pytest.mark.parametrize(("start", "target"), [(a, b) for a in AccountStatus for b in AccountStatus])
def test_every_status_transition_of_an_empty_account(conn, start, target):
    open_book(conn)
    _put_in(conn, start)
    before = _history_length(conn)
    if (start, target) == (CLOSED, FROZEN):
        with pytest.raises(StatusTransitionRefused, match="reopen it"):
            set_status(conn, WALLET_U1, target, "try")
        assert (get_account(conn, WALLET_U1).status, _history_length(conn)) == ("closed", before)
        return
    account, changed = set_status(conn, WALLET_U1, target, "why")
    assert account.status == target.value
    assert changed is (start is not target)
    assert _history_length(conn) == before + (1 if changed else 0)
    latest = status_history(conn, account.id, limit=1)[0]
    assert (latest.status, latest.reason) == ((target.value, "why") if changed else (start.value, latest.reason))


@pytest.mark.parametrize("start", [OPEN, FROZEN])
def test_an_account_with_a_balance_is_not_closed(conn, start):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    _put_in(conn, start)
    before = _history_length(conn)
    with pytest.raises(AccountNotEmpty, match="posted balance is 100") as refused:
        set_status(conn, WALLET_U1, CLOSED, "leaving")
    assert refused.value.details["posted_balance"] == 100
    assert (get_account(conn, WALLET_U1).status, _history_length(conn)) == (start.value, before)


def test_an_account_with_an_open_hold_is_not_closed_until_the_hold_is_voided(conn):
    open_book(conn)
    hold = post_one(conn, Hold("h1", "card.auth", [Leg(BANK, Side.DEBIT, 5), Leg(WALLET_U1, Side.CREDIT, 5)]))
    with pytest.raises(AccountNotEmpty, match="1 open holds"):
        set_status(conn, WALLET_U1, CLOSED, "leaving")
    post_one(conn, VoidHold("v1", hold.transaction_id))
    assert set_status(conn, WALLET_U1, CLOSED, "leaving")[0].status == "closed"


def test_a_closed_account_takes_no_postings_until_reopened(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    post_one(conn, spend(WALLET_U1, 100, "s1"))
    set_status(conn, WALLET_U1, CLOSED, "leaving")
    with pytest.raises(AccountFrozen, match="is closed"):
        top_up(conn, WALLET_U1, 1, "t2")
    set_status(conn, WALLET_U1, OPEN, "back")
    top_up(conn, WALLET_U1, 1, "t3")
    assert [c.status for c in status_history(conn, get_account(conn, WALLET_U1).id)] == [
        "open", "closed", "open"]


@pytest.mark.parametrize("reason", ["", "x" * 501, "nul\x00", None])
def test_a_reason_is_required_and_bounded(conn, reason):
    open_book(conn)
    with pytest.raises(ValidationError) as refused:
        set_status(conn, WALLET_U1, FROZEN, reason)  # type: ignore[arg-type]
    assert refused.value.field == "reason"
    assert get_account(conn, WALLET_U1).status == "open"


def test_the_database_refuses_what_python_would_have_refused(conn):
    """The functions check for themselves: a caller past the Python layer gets the same errors."""
    open_book(conn)
    for statement, args in [("select ledger.set_account_status(%s, %s, %s)", (WALLET_U1, "gone", "x")),
                            ("select ledger.set_account_status(%s, %s, %s)", (WALLET_U1, "frozen", "")),
                            ("select ledger.set_account_limits(%s, %s, %s)", (WALLET_U1, 5, 4))]:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(statement, args)
        assert caught.value.sqlstate == "LD001"
    with pytest.raises(AccountNotFound):
        set_status(conn, "liabilities:wallets:nobody", FROZEN, "x")
    with pytest.raises(AccountNotFound):
        set_limits(conn, "liabilities:wallets:nobody", 0, None)


def test_new_limits_bind_later_postings_in_the_direction_they_move(conn):
    """A balance already past a new limit stands; postings taking it further are refused, those
    bringing it back are not."""
    open_book(conn)
    top_up(conn, CAPPED, 800, "t1")
    account, changed = set_limits(conn, CAPPED, 0, 500)  # 800 is already above 500
    assert changed and (account.min_balance, account.max_balance) == (0, 500)
    with pytest.raises(LimitExceeded):
        top_up(conn, CAPPED, 1, "t2")
    post_one(conn, spend(CAPPED, 100, "s1"))  # back towards the limit: allowed
    set_limits(conn, CAPPED, 600, None)       # 700 now; at least 600
    with pytest.raises(InsufficientFunds):
        post_one(conn, spend(CAPPED, 101, "s2"))
    post_one(conn, spend(CAPPED, 100, "s3"))
    history = limit_history(conn, account.id)
    assert [(c.min_balance, c.max_balance) for c in history] == [(600, None), (0, 500), (0, 1000)]
    assert set_limits(conn, CAPPED, 600, None)[1] is False  # unchanged: nothing written
    assert len(limit_history(conn, account.id)) == 3


@pytest.mark.parametrize(("low", "high", "field"), [(5, 4, "minBalance"), (2**63, None, "minBalance"),
                                                    (None, -(2**63) - 1, "maxBalance")])
def test_limits_out_of_range_or_inverted_are_refused(conn, low, high, field):
    open_book(conn)
    with pytest.raises(ValidationError) as refused:
        set_limits(conn, CAPPED, low, high)
    assert refused.value.field == field
    assert len(limit_history(conn, get_account(conn, CAPPED).id)) == 1


def test_history_pages_newest_first(conn):
    open_book(conn)
    account_id = get_account(conn, WALLET_U1).id
    for i in range(5):
        set_status(conn, WALLET_U1, FROZEN, f"f{i}")
        set_status(conn, WALLET_U1, OPEN, f"o{i}")
    first = status_history(conn, account_id, limit=4)
    second = status_history(conn, account_id, before_id=first[-1].id, limit=4)
    reasons = [c.reason for c in first + second]
    assert reasons == ["o4", "f4", "o3", "f3", "o2", "f2", "o1", "f1"]


def _wait_until_blocked(db_url: str, pid: int) -> None:
    with psycopg.connect(db_url, autocommit=True) as watcher:
        for _ in range(500):
            row = watcher.execute("select wait_event_type from pg_stat_activity where pid = %s", (pid,)).fetchone()
            if row is not None and row[0] == "Lock":
                return
            time.sleep(0.01)
    raise AssertionError("the second session never waited on the first")


def test_a_close_waits_for_a_posting_in_flight_and_then_sees_its_balance(db_url):
    with psycopg.connect(db_url, autocommit=True) as setup:
        open_book(setup)
    with psycopg.connect(db_url) as poster, psycopg.connect(db_url, autocommit=True) as closer:
        poster.execute("select 1")  # a transaction is open: what follows stays uncommitted
        top_up(poster, WALLET_U1, 100, "t1")  # the balance row stays locked
        outcome: list[BaseException | tuple[Any, bool]] = []
        thread = threading.Thread(target=lambda: outcome.append(_attempt(closer, CLOSED)))
        thread.start()
        _wait_until_blocked(db_url, closer.info.backend_pid)
        poster.commit()
        thread.join()
    assert isinstance(outcome[0], AccountNotEmpty)
    with psycopg.connect(db_url, autocommit=True) as check:
        assert get_account(check, WALLET_U1).status == "open"


def test_a_posting_waits_for_a_close_in_flight_and_then_is_refused(db_url):
    with psycopg.connect(db_url, autocommit=True) as setup:
        open_book(setup)
    with psycopg.connect(db_url) as closer, psycopg.connect(db_url, autocommit=True) as poster:
        closer.execute("select 1")  # a transaction is open: what follows stays uncommitted
        set_status(closer, WALLET_U1, CLOSED, "leaving")
        outcome: list[BaseException | int] = []

        def post() -> None:
            try:
                outcome.append(top_up(poster, WALLET_U1, 100, "t1"))
            except AccountFrozen as exc:
                outcome.append(exc)
        thread = threading.Thread(target=post)
        thread.start()
        _wait_until_blocked(db_url, poster.info.backend_pid)
        closer.commit()
        thread.join()
    assert isinstance(outcome[0], AccountFrozen)
    with psycopg.connect(db_url, autocommit=True) as check:
        account = get_account(check, WALLET_U1)
        assert account.status == "closed"
        assert check.execute("select posted_credits - posted_debits from ledger.balances where account_id = %s",
                             (account.id,)).fetchone() == (0,)


def _attempt(conn: psycopg.Connection[Any], status: AccountStatus) -> BaseException | tuple[Any, bool]:
    try:
        return set_status(conn, WALLET_U1, status, "race")
    except (AccountNotEmpty, AccountFrozen) as exc:
        return exc


def test_closing_and_posting_at_once_never_leave_a_closed_account_with_money(db_url):
    """Workers move money in and out of one wallet while another closes and reopens it: whenever
    it ends closed its balance is zero, and no worker sees anything but the expected refusals."""
    with psycopg.connect(db_url, autocommit=True) as setup:
        open_book(setup)
    unexpected: list[str] = []
    closes = [0]

    def mover(worker: int) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            for i in range(40):
                try:
                    top_up(conn, WALLET_U1, 3, f"in-{worker}-{i}")
                    post_one(conn, spend(WALLET_U1, 3, f"out-{worker}-{i}"))
                except (AccountFrozen, InsufficientFunds):
                    pass
                except Exception as exc:  # noqa: BLE001 - reported below
                    unexpected.append(repr(exc))

    movers_done = threading.Event()

    def closer() -> None:
        # At least 60 tries while the movers run, and on until one close succeeded after they
        # ended (the wallet is then empty): however slow the postings (a Citus cluster), the close
        # is both raced and reached.
        with psycopg.connect(db_url, autocommit=True) as conn:
            for attempt in range(10_000):
                if attempt >= 60 and movers_done.is_set() and closes[0] > 0:
                    break
                try:
                    set_status(conn, WALLET_U1, CLOSED, "race")
                    closes[0] += 1
                    balance = conn.execute(
                        "select b.posted_credits - b.posted_debits from ledger.balances b "
                        "join ledger.accounts a on a.id = b.account_id where a.code = %s", (WALLET_U1,)).fetchone()
                    if balance != (0,):
                        unexpected.append(f"closed with {balance}")
                    set_status(conn, WALLET_U1, OPEN, "race")
                except AccountNotEmpty:
                    pass
                except Exception as exc:  # noqa: BLE001 - reported below
                    unexpected.append(repr(exc))

    movers = [threading.Thread(target=mover, args=(n,)) for n in range(3)]
    closing = threading.Thread(target=closer)
    for thread in [*movers, closing]:
        thread.start()
    for thread in movers:
        thread.join()
    movers_done.set()
    closing.join()
    assert unexpected == []
    assert closes[0] > 0
    with psycopg.connect(db_url, autocommit=True) as check:
        from ledger.audit import verify
        assert verify(check).ok
