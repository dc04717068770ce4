"""Balances as of an effective time and as known at a recorded time; roll-ups; trial balance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from book import BANK, MERCHANT_M1, WALLET_U1, WALLET_U2, open_book, spend, top_up

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.balances import balance, rollup
from ledger.journal import TrialBalanceLine, TrialBalanceTotal, trial_balance, trial_balance_totals
from ledger.money import Money
from ledger.posting import Hold, Leg, Transfer, VoidHold, post, post_one


def _now(conn) -> datetime:
    return conn.execute("select clock_timestamp()").fetchone()[0]


def _top_up_at(conn, amount: int, key: str, effective_at: datetime) -> None:
    post_one(conn, Transfer(key, "wallet.top_up", [Leg(BANK, Side.DEBIT, amount), Leg(WALLET_U1, Side.CREDIT, amount)],
                            effective_at=effective_at))


def test_as_of_an_effective_time(conn):
    ids = open_book(conn)
    day = datetime(2026, 3, 1, tzinfo=UTC)
    _top_up_at(conn, 100, "a", day)
    _top_up_at(conn, 200, "b", day + timedelta(days=2))
    _top_up_at(conn, 400, "c", day + timedelta(days=4))
    wallet = ids[WALLET_U1]
    assert balance(conn, wallet, as_of=day - timedelta(seconds=1)).posted == 0
    assert balance(conn, wallet, as_of=day).posted == 100
    assert balance(conn, wallet, as_of=day + timedelta(days=3)).posted == 300
    assert balance(conn, wallet, as_of=day + timedelta(days=10)).posted == 700


def test_as_known_at_a_recorded_time_ignores_later_backdated_postings(conn):
    ids = open_book(conn)
    day = datetime(2026, 3, 1, tzinfo=UTC)
    _top_up_at(conn, 100, "a", day)
    printed_at = _now(conn)
    _top_up_at(conn, 50, "late", day - timedelta(days=1))  # backdated, learnt after the print
    wallet = ids[WALLET_U1]
    assert balance(conn, wallet, as_of=day).posted == 150
    assert balance(conn, wallet, as_of=day, known_at=printed_at).posted == 100
    assert balance(conn, wallet, as_of=day - timedelta(hours=1), known_at=printed_at).posted == 0
    assert balance(conn, wallet, known_at=printed_at).posted == 100
    assert balance(conn, wallet, known_at=datetime(2000, 1, 1, tzinfo=UTC)).posted == 0


def test_available_as_known_at_a_recorded_time_counts_the_holds_open_then(conn):
    """Known at R alone judges holds at R, as the balance now judges them at the clock: known at
    now is the balance now (it once counted no hold at all, judging them at the end of time)."""
    ids = open_book(conn)
    wallet = ids[WALLET_U1]
    top_up(conn, WALLET_U1, 1000, "seed")
    hold = post_one(conn, Hold("auth", "payment.authorize", [Leg(WALLET_U1, Side.DEBIT, 300),
                                                             Leg(MERCHANT_M1, Side.CREDIT, 300)])).transaction_id
    held_at = _now(conn)
    now = balance(conn, wallet)
    assert (now.posted, now.pending, now.available) == (1000, 700, 700)
    assert balance(conn, wallet, known_at=held_at) == now
    post_one(conn, VoidHold("void", hold))
    assert balance(conn, wallet, known_at=held_at).available == 700
    assert balance(conn, wallet, known_at=_now(conn)).available == 1000


def test_the_version_known_at_a_time_is_found_for_every_version(conn):
    """ledger.version_known_at binary-searches the primary key, relying on recorded_at rising
    with the version: checked against a scan at every recorded time, and between them."""
    ids = open_book(conn)
    wallet = ids[WALLET_U1]
    for i in range(37):
        if i % 5 == 0:  # some batches of two: versions that share a recorded time
            post(conn, [Transfer(f"pair-{i}-{j}", "wallet.top_up",
                                 [Leg(BANK, Side.DEBIT, 1), Leg(WALLET_U1, Side.CREDIT, 1)]) for j in range(2)])
        else:
            top_up(conn, WALLET_U1, 1, f"t{i}")
    rows = conn.execute("select account_version, recorded_at from ledger.entries where account_id = %s "
                        "order by account_version", (wallet,)).fetchall()
    assert len(rows) > 37

    def known(at):
        return conn.execute("select ledger.version_known_at(%s, %s)", (wallet, at)).fetchone()[0]

    for _version, recorded_at in rows:
        expected = max(v for v, r in rows if r <= recorded_at)
        assert known(recorded_at) == expected
        assert known(recorded_at - timedelta(microseconds=1)) == max((v for v, r in rows if r < recorded_at),
                                                                      default=0)
    assert known(rows[-1][1] + timedelta(days=1)) == rows[-1][0]
    assert known(datetime(2000, 1, 1, tzinfo=UTC)) == 0
    assert conn.execute("select ledger.version_known_at(%s, now())", (ids[WALLET_U2],)).fetchone()[0] == 0
    assert conn.execute("select ledger.version_known_at(-1, now())").fetchone()[0] is None


def test_recorded_time_never_falls_as_the_version_rises_even_if_the_clock_is_set_back(conn):
    """The engine records no entry before an account's newest one (a clock set back is played
    here by a newest entry recorded an hour ahead)."""
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 5, "before")
    ahead = _now(conn) + timedelta(hours=1)
    conn.execute("update ledger.balances set last_recorded_at = %s where account_id = %s", (ahead, ids[WALLET_U1]))
    top_up(conn, WALLET_U1, 5, "after")
    recorded = conn.execute("select account_version, recorded_at from ledger.entries where account_id = %s "
                            "order by account_version", (ids[WALLET_U1],)).fetchall()
    assert recorded[-1][1] == ahead  # not the (earlier) clock
    bank = conn.execute("select recorded_at from ledger.entries where account_id = %s and account_version = 2",
                        (ids[BANK],)).fetchone()[0]
    assert bank == ahead  # one recorded time per batch, for every account it touches
    assert conn.execute("select last_recorded_at from ledger.balances where account_id = %s",
                        (ids[BANK],)).fetchone()[0] == ahead


def test_as_of_counts_holds_open_at_that_time(conn):
    from ledger.posting import Hold, VoidHold

    ids = open_book(conn)
    top_up(conn, WALLET_U1, 1000, "t1")
    hold = post_one(conn, Hold("h", "payment.authorize", [Leg(WALLET_U1, Side.DEBIT, 300),
                                                          Leg(MERCHANT_M1, Side.CREDIT, 300)])).transaction_id
    while_open = _now(conn)
    post_one(conn, VoidHold("v", hold))
    wallet = ids[WALLET_U1]
    then = balance(conn, wallet, as_of=while_open)
    assert (then.posted, then.pending, then.available) == (1000, 700, 700)
    now = balance(conn, wallet, as_of=_now(conn))
    assert (now.posted, now.pending, now.available) == (1000, 1000, 1000)


def test_rollup_of_a_category_per_currency(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    top_up(conn, WALLET_U2, 250, "t2")
    post_one(conn, spend(WALLET_U1, 40, "s1"))
    assert rollup(conn, "liabilities:wallets") == [Money(310, "CNY")]
    assert rollup(conn, "liabilities") == [Money(350, "CNY")]
    assert rollup(conn, "liabilities:wall") == []  # a prefix is a whole category segment
    assert rollup(conn, "assets") == [Money(350, "CNY"), Money(0, "USD")]


def test_a_contra_account_nets_its_category(conn):
    open_book(conn)
    create_account(conn, NewAccount("assets:loans:allowance", "Allowance", AccountType.ASSET, "CNY", contra=True))
    create_account(conn, NewAccount("expenses:provisions", "Provisions", AccountType.EXPENSE, "CNY"))
    post_one(conn, Transfer("p", "loan.provision", [Leg("expenses:provisions", Side.DEBIT, 30),
                                                     Leg("assets:loans:allowance", Side.CREDIT, 30)]))
    top_up(conn, WALLET_U1, 100, "t1")
    assert rollup(conn, "assets") == [Money(70, "CNY"), Money(0, "USD")]


def test_rollup_as_of(conn):
    open_book(conn)
    day = datetime(2026, 3, 1, tzinfo=UTC)
    _top_up_at(conn, 100, "a", day)
    _top_up_at(conn, 200, "b", day + timedelta(days=2))
    assert rollup(conn, "liabilities:wallets", as_of=day + timedelta(days=1)) == [Money(100, "CNY")]


def test_trial_balance_is_zero_per_currency(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    post_one(conn, spend(WALLET_U1, 40, "s1"))
    lines = trial_balance(conn)
    assert sum(line.debit_balance for line in lines) == sum(line.credit_balance for line in lines) == 100
    assert {line.code: (line.debit_balance, line.credit_balance) for line in lines
            if line.debit_balance or line.credit_balance} == {
        BANK: (100, 0), WALLET_U1: (0, 60), MERCHANT_M1: (0, 40)}


def test_trial_balance_totals_per_currency(conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    post_one(conn, spend(WALLET_U1, 40, "s1"))
    book = {t.currency: t for t in trial_balance_totals(trial_balance(conn))}
    assert book["CNY"] == TrialBalanceTotal("CNY", 100, 100) and all(t.balanced for t in book.values())
    lines = [TrialBalanceLine(1, "a", "USD", 7, 0), TrialBalanceLine(2, "b", "CNY", 0, 5),
             TrialBalanceLine(3, "c", "USD", 0, 3), TrialBalanceLine(4, "d", "CNY", 5, 0)]
    totals = trial_balance_totals(lines)
    assert totals == [TrialBalanceTotal("CNY", 5, 5), TrialBalanceTotal("USD", 7, 3)]
    assert [t.balanced for t in totals] == [True, False]
