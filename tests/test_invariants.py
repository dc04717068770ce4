"""Each invariant of docs/design.md attacked from SQL, past the Python layer."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psycopg
import pytest
from book import BANK, MERCHANT_M1, WALLET_U1, WALLET_U2, open_book, top_up
from psycopg import errors as pg_errors

from ledger.audit import verify
from ledger.balances import balance


def _raw_transaction(cur, key: str) -> int:
    return cur.execute(
        """insert into ledger.transactions (idempotency_key, fingerprint, kind, effective_at)
           values (%s, '\\x00', 'attack.raw', now()) returning id""", (key,)).fetchone()[0]


def _raw_entry(cur, transaction_id: int, account_id: int, version: int, side: str, amount: int, currency="CNY",
               layer="posted", shift_s=0):
    cur.execute(
        """insert into ledger.entries (account_id, account_version, transaction_id, currency, side, amount, layer,
                                       effective_at, recorded_at, posted_balance_after, pending_balance_after, hash)
           select %s, %s, %s, %s, %s, %s, %s, t.effective_at + make_interval(secs => %s), now(), 0, 0,
                  decode(repeat('00', 32), 'hex')
             from ledger.transactions t where t.id = %s""",
        (account_id, version, transaction_id, currency, side, amount, layer, shift_s, transaction_id))


def test_an_unbalanced_transaction_fails_at_commit(db_url):
    with psycopg.connect(db_url, autocommit=True) as setup:
        ids = open_book(setup)
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            tx = _raw_transaction(cur, "raw-1")
            _raw_entry(cur, tx, ids[BANK], 1, "debit", 100)
            _raw_entry(cur, tx, ids[WALLET_U1], 1, "credit", 99)  # statements succeed ...
        with pytest.raises(psycopg.Error, match="does not balance"):
            conn.commit()                                      # ... the commit does not
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select count(*) from ledger.entries").fetchone()[0] == 0


@pytest.mark.parametrize("legs, match", [
    ([("debit", 100, "posted"), ("credit", 100, "pending")],
     "CNY (posted debits exceed credits by 100|pending debits exceed credits by -100)"),
    ([("debit", 99, "posted"), ("credit", 100, "posted")], "CNY posted debits exceed credits by -1"),
])
def test_each_layer_balances_on_its_own_at_commit(db_url, legs, match):
    """Debits equal credits per currency and layer: a posted debit is not balanced by a pending
    credit, and credits exceeding debits are refused as surely as the reverse."""
    with psycopg.connect(db_url, autocommit=True) as setup:
        ids = open_book(setup)
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            tx = _raw_transaction(cur, "raw-layers")
            for (side, amount, layer), account in zip(legs, (BANK, WALLET_U1), strict=True):
                _raw_entry(cur, tx, ids[account], 1, side, amount, layer=layer)
        with pytest.raises(psycopg.Error, match=f"transaction {tx} does not balance: {match}"):
            conn.commit()


def test_a_leg_dated_apart_from_its_transaction_fails_at_commit(db_url):
    with psycopg.connect(db_url, autocommit=True) as setup:
        ids = open_book(setup)
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            tx = _raw_transaction(cur, "raw-time")
            _raw_entry(cur, tx, ids[BANK], 1, "debit", 100)
            _raw_entry(cur, tx, ids[WALLET_U1], 1, "credit", 100, shift_s=1)
        with pytest.raises(psycopg.Error, match=f"transaction {tx} has a leg whose effective time differs"):
            conn.commit()


def test_a_transaction_row_claiming_another_database_transaction_fails_at_commit(db_url):
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            tx = cur.execute(
                """insert into ledger.transactions (idempotency_key, fingerprint, kind, effective_at, created_xact)
                   values ('raw-xact', '\\x00', 'attack.raw', now(), '3'::xid8) returning id""").fetchone()[0]
        with pytest.raises(psycopg.Error, match=f"transaction {tx} claims to be written by another"):
            conn.commit()


def test_the_engine_itself_refuses_bad_legs(conn):
    """post_batch judges legs before it writes, whoever calls it: the commit check and the table
    constraints are backstops, not the rule."""
    open_book(conn)
    leg = {"account": BANK, "side": "debit", "amount": 1}
    for legs, match in (([leg], "request 1 has 1 legs; a transaction has between 2 and 100"),
                        ([leg] * 101, "request 1 has 101 legs; a transaction has between 2 and 100"),
                        ([{**leg, "amount": 0}, {**leg, "side": "credit"}], "request 1 leg 1: amount must be a whole")):
        with pytest.raises(psycopg.Error, match=match) as caught:
            conn.execute("select ledger.post_batch(%s)",
                         (json.dumps([{"op": "transfer", "key": "k", "kind": "a.b", "legs": legs}]),))
        assert caught.value.sqlstate == "LD001"


def test_an_accounts_currency_never_changes(conn):
    ids = open_book(conn)
    with pytest.raises(psycopg.Error, match="id, code, type, normal side and currency never change"):
        conn.execute("update ledger.accounts set currency = 'USD' where id = %s", (ids[WALLET_U2],))


def test_a_transaction_with_one_leg_or_none_fails_at_commit(db_url):
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            _raw_transaction(cur, "raw-empty")
        with pytest.raises(psycopg.Error, match="has 0 legs; a transaction needs at least two"):
            conn.commit()
    with psycopg.connect(db_url, autocommit=True) as setup:
        ids = open_book(setup)
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            tx = _raw_transaction(cur, "raw-one")
            _raw_entry(cur, tx, ids[BANK], 1, "debit", 100)
        with pytest.raises(psycopg.Error, match=f"transaction {tx} has 1 legs; a transaction needs at least two"):
            conn.commit()


def test_the_commit_check_covers_every_transaction_of_the_database_transaction(db_url):
    """One check at commit judges all the transactions written: the unbalanced one among many is
    named, whichever row's trigger ran the check."""
    with psycopg.connect(db_url, autocommit=True) as setup:
        ids = open_book(setup)
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            for i in range(5):
                tx = _raw_transaction(cur, f"raw-{i}")
                _raw_entry(cur, tx, ids[BANK], i + 1, "debit", 100)
                _raw_entry(cur, tx, ids[WALLET_U1], i + 1, "credit", 100 if i != 3 else 98)
                if i == 3:
                    unbalanced = tx
        with pytest.raises(psycopg.Error, match=f"transaction {unbalanced} does not balance"):
            conn.commit()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select count(*) from ledger.transactions").fetchone()[0] == 0


@pytest.mark.parametrize("balanced", [True, False])
def test_the_commit_check_covers_transactions_whose_ids_lie_far_apart(db_url, balanced):
    """A long database transaction's ids are spread among other sessions' (the check then
    probes each transaction rather than reading one range of ids)."""
    with psycopg.connect(db_url, autocommit=True) as other:
        ids = open_book(other)
        with psycopg.connect(db_url) as conn:
            with conn.cursor() as cur:
                # (on accounts the other session does not post to: its versions would collide)
                first = _raw_transaction(cur, "raw-early")
                _raw_entry(cur, first, ids[WALLET_U2], 1, "debit", 100)
                _raw_entry(cur, first, ids[MERCHANT_M1], 1, "credit", 100)
                for i in range(20):  # other sessions post meanwhile
                    top_up(other, WALLET_U1, 1, f"meanwhile-{i}")
                last = _raw_transaction(cur, "raw-late")
                assert last - first > 20
                _raw_entry(cur, last, ids[WALLET_U2], 2, "debit", 100)
                _raw_entry(cur, last, ids[MERCHANT_M1], 2, "credit", 100 if balanced else 1)
            if balanced:
                conn.commit()
            else:
                with pytest.raises(psycopg.Error, match=f"transaction {last} does not balance"):
                    conn.commit()


def test_a_transaction_checked_early_takes_no_more_legs_and_later_ones_are_checked(db_url):
    """SET CONSTRAINTS ... IMMEDIATE runs the balance check before commit: the transactions it
    passed are sealed, and a transaction written afterwards is checked again at commit."""
    with psycopg.connect(db_url, autocommit=True) as setup:
        ids = open_book(setup)
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            tx = _raw_transaction(cur, "raw-early")
            _raw_entry(cur, tx, ids[BANK], 1, "debit", 100)
            _raw_entry(cur, tx, ids[WALLET_U1], 1, "credit", 100)
            cur.execute("set constraints ledger.transactions_balanced immediate")
            with pytest.raises(psycopg.Error, match=f"transaction {tx} was already checked"):
                _raw_entry(cur, tx, ids[MERCHANT_M1], 1, "credit", 5)
        conn.rollback()
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            first = _raw_transaction(cur, "raw-first")
            _raw_entry(cur, first, ids[BANK], 1, "debit", 100)
            _raw_entry(cur, first, ids[WALLET_U1], 1, "credit", 100)
            cur.execute("set constraints ledger.transactions_balanced immediate")
            cur.execute("set constraints ledger.transactions_balanced deferred")
            second = _raw_transaction(cur, "raw-second")
            _raw_entry(cur, second, ids[BANK], 2, "debit", 100)
            _raw_entry(cur, second, ids[WALLET_U1], 2, "credit", 1)
        with pytest.raises(psycopg.Error, match=f"transaction {second} does not balance"):
            conn.commit()


def test_a_leg_cannot_be_added_to_a_committed_transaction(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = open_book(conn)
        tx = top_up(conn, WALLET_U1, 100, "t1")
        with pytest.raises(psycopg.Error, match="already committed"):
            with conn.transaction():
                _raw_entry(conn.cursor(), tx, ids[MERCHANT_M1], 1, "credit", 5)


def test_a_balanced_raw_insert_by_the_owner_commits(db_url):
    """The commit check judges the books, not the path: a balanced SQL insert is accepted
    (verify then flags its made-up chain and projection, see test_audit)."""
    with psycopg.connect(db_url, autocommit=True) as setup:
        ids = open_book(setup)
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cur:
            tx = _raw_transaction(cur, "raw-ok")
            _raw_entry(cur, tx, ids[BANK], 1, "debit", 100)
            _raw_entry(cur, tx, ids[MERCHANT_M1], 1, "credit", 100)
        conn.commit()


@pytest.mark.parametrize("statement", [
    "update ledger.entries set amount = amount + 1",
    "delete from ledger.entries",
    "truncate ledger.entries",
    "update ledger.transactions set description = 'rewritten'",
    "delete from ledger.transactions",
    "truncate ledger.transactions cascade",
    "delete from ledger.account_status_changes",
    "update ledger.period_closes set closed_until = now()",
])
def test_the_journal_is_append_only_even_for_its_owner(db_url, statement):
    with psycopg.connect(db_url, autocommit=True) as conn:
        open_book(conn)
        top_up(conn, WALLET_U1, 100, "t1")
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute(statement)
        assert conn.execute("select count(*), sum(amount) from ledger.entries").fetchone() == (2, 200)


@pytest.mark.parametrize("statement", [
    "update ledger.entries set amount = amount + 1",
    "delete from ledger.entries",
    "truncate ledger.entries",
    "insert into ledger.transactions (idempotency_key, fingerprint, kind, effective_at) values ('x', '\\x00', 'a.b', now())",
    "update ledger.balances set posted_credits = 0",
])
def test_the_application_role_cannot_write_the_journal_directly(db_url, statement):
    with psycopg.connect(db_url, autocommit=True) as conn:
        open_book(conn)
        top_up(conn, WALLET_U1, 100, "t1")
        conn.execute("set role ledger_app")
        with pytest.raises(pg_errors.InsufficientPrivilege):
            conn.execute(statement)
        # ... but it posts through the engine and reads everything.
        conn.execute("""select ledger.post_batch('[{"op": "transfer", "key": "app", "kind": "a.b",
                        "legs": [{"account": "assets:bank:icbc", "side": "debit", "amount": 1},
                                 {"account": "liabilities:wallets:U1", "side": "credit", "amount": 1}]}]')""")
        assert conn.execute("select count(*) from ledger.entries").fetchone()[0] == 4


def test_amounts_are_positive_integers_and_legs_carry_their_accounts_currency(db_url):
    with psycopg.connect(db_url, autocommit=True) as setup:
        ids = open_book(setup)
    for account, amount, currency, match in [
        (ids[BANK], 0, "CNY", "amount_check"), (ids[BANK], -1, "CNY", "amount_check"),
        (ids[BANK], 5, "USD", "which is in CNY"), (999_999, 5, "CNY", "does not exist"),
    ]:
        with psycopg.connect(db_url) as conn:
            with pytest.raises(psycopg.Error, match=match):
                with conn.cursor() as cur:
                    tx = _raw_transaction(cur, f"raw-{amount}-{currency}")
                    _raw_entry(cur, tx, account, 1, "debit", amount, currency)


def test_a_leg_must_name_an_existing_transaction(db_url):
    with psycopg.connect(db_url, autocommit=True) as setup:
        ids = open_book(setup)
    with psycopg.connect(db_url) as conn:
        with pytest.raises(psycopg.Error, match="transaction 424242, which does not exist"):
            conn.execute(
                """insert into ledger.entries (account_id, account_version, transaction_id, currency, side, amount, layer,
                                               effective_at, recorded_at, posted_balance_after, pending_balance_after, hash)
                   values (%s, 1, 424242, 'CNY', 'debit', 5, 'posted', now(), now(), 0, 0, decode(repeat('00', 32), 'hex'))""",
                (ids[BANK],))


def test_engine_replays_and_conflicts_from_sql(conn):
    open_book(conn)
    batch = [{"op": "transfer", "key": "k", "kind": "a.b",
              "legs": [{"account": BANK, "side": "debit", "amount": 5},
                       {"account": WALLET_U1, "side": "credit", "amount": 5}]}]
    first = conn.execute("select ledger.post_batch(%s)", (json.dumps(batch),)).fetchone()[0]
    again = conn.execute("select ledger.post_batch(%s)", (json.dumps(batch),)).fetchone()[0]
    assert again == [{"id": first[0]["id"], "replayed": True}]
    batch[0]["legs"][0]["amount"] = batch[0]["legs"][1]["amount"] = 6  # same key, another request
    with pytest.raises(psycopg.Error, match="different request") as caught:
        conn.execute("select ledger.post_batch(%s)", (json.dumps(batch),))
    assert caught.value.sqlstate == "LD008"


def _race(db_url: str, actions: list, barrier_parties: int) -> list:
    """Run each action(conn) in its own thread and connection, released together."""
    barrier = threading.Barrier(barrier_parties)
    outcomes: list = [None] * len(actions)

    def run(index: int) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            barrier.wait()
            try:
                outcomes[index] = actions[index](conn)
            except Exception as exc:  # noqa: BLE001 - the outcome is what the test inspects
                outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_concurrent_spends_cannot_pass_a_limit(db_url):
    from book import spend

    from ledger.errors import InsufficientFunds
    from ledger.posting import post_one

    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = open_book(conn)
        top_up(conn, WALLET_U1, 100, "t1")
    actions = [lambda c, i=i: post_one(c, spend(WALLET_U1, 30, f"race-{i}")) for i in range(8)]
    outcomes = _race(db_url, actions, 8)
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    losses = [o for o in outcomes if isinstance(o, Exception)]
    assert len(wins) == 3 and all(isinstance(o, InsufficientFunds) for o in losses), outcomes
    with psycopg.connect(db_url) as conn:
        assert balance(conn, ids[WALLET_U1]).posted == 10


def test_concurrent_posts_of_one_hold_resolve_it_once(db_url):
    from ledger.accounts import Side
    from ledger.errors import HoldNotPending
    from ledger.posting import Hold, Leg, PostHold, post_one

    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = open_book(conn)
        top_up(conn, WALLET_U1, 1000, "t1")
        hold = post_one(conn, Hold("h", "payment.authorize", [Leg(WALLET_U1, Side.DEBIT, 500),
                                                              Leg(MERCHANT_M1, Side.CREDIT, 500)])).transaction_id
    actions = [lambda c, i=i: post_one(c, PostHold(f"capture-{i}", hold)) for i in range(4)]
    outcomes = _race(db_url, actions, 4)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1, outcomes
    assert all(isinstance(o, HoldNotPending) for o in outcomes if isinstance(o, Exception))
    with psycopg.connect(db_url) as conn:
        assert balance(conn, ids[MERCHANT_M1]).posted == 500
        assert verify(conn, progress=None).ok


def test_a_killed_session_mid_batch_leaves_nothing(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        open_book(conn)
    victim = psycopg.connect(db_url)
    pid = victim.info.backend_pid
    batch = [{"op": "transfer", "key": f"k{i}", "kind": "a.b",
              "legs": [{"account": BANK, "side": "debit", "amount": 5},
                       {"account": WALLET_U1, "side": "credit", "amount": 5}]} for i in range(500)]
    victim.execute("select ledger.post_batch(%s)", (json.dumps(batch),))  # written, not committed
    with psycopg.connect(db_url, autocommit=True) as killer:
        assert killer.execute("select pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        assert killer.execute("select count(*) from ledger.entries").fetchone()[0] == 0
        assert killer.execute("select count(*) from ledger.transactions").fetchone()[0] == 0
        assert killer.execute("select sum(version) from ledger.balances").fetchone()[0] == 0
    with pytest.raises(psycopg.OperationalError):
        victim.commit()
    victim.close()


def test_a_client_process_killed_during_a_large_batch_leaves_all_or_nothing(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        open_book(conn)
    script = textwrap.dedent(f"""
        import psycopg, json, sys
        batch = [{{"op": "transfer", "key": f"k{{i}}", "kind": "a.b",
                  "legs": [{{"account": "{BANK}", "side": "debit", "amount": 5}},
                           {{"account": "{WALLET_U1}", "side": "credit", "amount": 5}}]}} for i in range(10000)]
        with psycopg.connect({db_url!r}, autocommit=True) as conn:
            print("posting", flush=True)
            conn.execute("select ledger.post_batch(%s)", (json.dumps(batch),))
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "posting"
    with psycopg.connect(db_url, autocommit=True) as watcher:
        # Killed only once the server is running the batch, so the kill lands mid-batch.
        deadline = time.monotonic() + 30
        while not watcher.execute("select count(*) from pg_stat_activity where state = 'active' "
                                  "and query like '%%post_batch%%' and pid <> pg_backend_pid() "
                                  "and datname = current_database()").fetchone()[0]:
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    assert child.wait(10) == -signal.SIGKILL  # killed, not finished before the kill
    child.stdout.close()
    time.sleep(0.5)  # the server notices the closed socket and aborts the statement
    with psycopg.connect(db_url, autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while conn.execute("select count(*) from pg_stat_activity where query like '%%post_batch%%' "
                           "and pid <> pg_backend_pid() and datname = current_database()").fetchone()[0]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        count = conn.execute("select count(*) from ledger.transactions").fetchone()[0]
        assert count in (0, 10000)
        assert verify(conn, progress=None).ok
