"""The journal feed: order, cursors, and never missing a transaction that commits out of order."""

from __future__ import annotations

import json
import time

import psycopg
import pytest
from psycopg import sql

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.errors import ValidationError
from ledger.feed import FeedItem, journal_page, page_size_max
from ledger.posting import Leg, Transfer, post
from ledger.statement_cut import journal_horizon
from ledger_cli.main import main

HORIZON_WAIT_S = 30  # another session on a shared server may briefly hold the horizon back


def _accounts(conn, *names):
    for name in names:
        create_account(conn, NewAccount(f"assets:bank:{name}", name, AccountType.ASSET, "CNY"))
        create_account(conn, NewAccount(f"liabilities:wallets:{name}", name, AccountType.LIABILITY, "CNY"))


def _top_up(key, name, amount):
    return Transfer(key, "wallet.top_up", [Leg(f"assets:bank:{name}", Side.DEBIT, amount),
                                           Leg(f"liabilities:wallets:{name}", Side.CREDIT, amount)])


def _follow(conn, after, *, until_ids, first=100) -> tuple[list[FeedItem], str | None]:
    """Read the feed from `after` until every id in until_ids was delivered (or time runs out)."""
    items: list[FeedItem] = []
    deadline = time.monotonic() + HORIZON_WAIT_S
    while True:
        page = journal_page(conn, after=after, first=first)
        items += page.items
        after = page.end_cursor
        if page.has_next_page:
            continue
        if set(until_ids) <= {i.transaction.id for i in items} or time.monotonic() > deadline:
            return items, after
        time.sleep(0.2)


def test_pages_follow_in_order_with_entries(conn):
    _accounts(conn, "a")
    ids = [p.transaction_id for p in post(conn, [_top_up(f"k{n}", "a", 100 * n) for n in range(1, 6)])]
    seen, after = [], None
    while True:
        page = journal_page(conn, after=after, first=2)
        seen += page.items
        after = page.end_cursor
        if not page.has_next_page:
            break
    if {i.transaction.id for i in seen} != set(ids):  # the horizon was held back by another session
        more, after = _follow(conn, after, until_ids=ids)
        seen += more
    assert [i.transaction.id for i in seen] == sorted(ids)  # one database transaction: id order
    assert [len(i.entries) for i in seen] == [2] * 5
    first = seen[0]
    assert first.transaction.idempotency_key == "k1"
    assert {(e.side, e.amount) for e in first.entries} == {("debit", 100), ("credit", 100)}
    assert len({i.created_xact for i in seen}) == 1
    # Resuming from the last cursor gives nothing new, and keeps the cursor.
    empty = journal_page(conn, after=after, first=10)
    assert empty.items == [] and empty.end_cursor == after and not empty.has_next_page


def test_transactions_committed_out_of_order_are_never_skipped(conn, db_url):
    _accounts(conn, "a", "b", "c")
    [t0] = post(conn, [_top_up("t0", "c", 1)])
    with psycopg.connect(db_url, autocommit=True) as older, psycopg.connect(db_url, autocommit=True) as newer:
        with older.transaction():
            [t1] = post(older, [_top_up("t1", "a", 100)])           # starts first: lower id and xid
            with newer.transaction():
                [t2] = post(newer, [_top_up("t2", "b", 200)])
            # t2 has committed, t1 has not: an id-ordered reader would now see t2 and move past t1.
            visible = [r[0] for r in conn.execute("select id from ledger.transactions order by id")]
            assert visible == [t0.transaction_id, t2.transaction_id]
            assert t1.transaction_id < t2.transaction_id
            during, cursor = _follow(conn, None, until_ids=[t0.transaction_id])
            assert [i.transaction.id for i in during] == [t0.transaction_id]
            # Polling again while t1 is in flight still does not deliver t2.
            assert journal_page(conn, after=cursor, first=10).items == []
        after, _ = _follow(conn, cursor, until_ids=[t1.transaction_id, t2.transaction_id])
    assert [i.transaction.id for i in after] == [t1.transaction_id, t2.transaction_id]
    assert after[0].created_xact < after[1].created_xact


def test_order_is_by_writing_transaction_not_by_id(conn, db_url):
    """A database transaction that started writing first is delivered first, even when its
    journal transaction got the higher id: the cursor can never pass anything still in flight."""
    _accounts(conn, "a", "b")
    with psycopg.connect(db_url, autocommit=True) as early, psycopg.connect(db_url, autocommit=True) as late:
        with early.transaction():
            early.execute("select pg_current_xact_id()")            # takes its xid now
            [t1] = post(late, [_top_up("t1", "a", 100)])           # commits at once, lower id
            during, cursor = _follow(conn, None, until_ids=[])
            assert during == []                                      # t1 waits behind the older writer
            [t2] = post(early, [_top_up("t2", "b", 200)])
        assert t2.transaction_id > t1.transaction_id
        delivered, _ = _follow(conn, cursor, until_ids=[t1.transaction_id, t2.transaction_id])
    assert [i.transaction.id for i in delivered] == [t2.transaction_id, t1.transaction_id]


def test_bad_cursor_and_page_size(conn):
    with pytest.raises(ValidationError) as bad:
        journal_page(conn, after="not-a-cursor")
    assert bad.value.field == "after"
    for first in (0, page_size_max + 1, True):
        with pytest.raises(ValidationError) as too_many:
            journal_page(conn, first=first)
        assert too_many.value.field == "first"


def test_cli_journal_jsonl_resumes_from_a_cursor(conn, db_url, monkeypatch, capsys):
    _accounts(conn, "a")
    ids = [p.transaction_id for p in post(conn, [_top_up(f"k{n}", "a", n) for n in range(1, 4)])]
    _follow(conn, None, until_ids=ids)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["journal", "--format", "jsonl", "--page-size", "2", "--limit", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [json.loads(line) for line in out]
    assert [line["id"] for line in lines] == ids[:2]
    assert lines[0]["entries"][0]["account"] in ("assets:bank:a", "liabilities:wallets:a")
    assert {e["amountMinor"] for e in lines[1]["entries"]} == {2}
    assert isinstance(lines[0]["createdXact"], str)
    assert main(["journal", "--after", lines[-1]["cursor"]]) == 0
    rest = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["id"] for line in rest] == ids[2:]


def test_transactions_in_other_databases_do_not_hold_the_feed_back(conn, db_url):
    _accounts(conn, "a")
    other_db = psycopg.conninfo.make_conninfo(db_url, dbname="postgres")
    with psycopg.connect(other_db, autocommit=True) as elsewhere:
        with elsewhere.transaction():
            elsewhere.execute("select pg_current_xact_id()")        # an open writer in another database
            [t1] = post(conn, [_top_up("t1", "a", 1)])
            delivered, _ = _follow(conn, None, until_ids=[t1.transaction_id])
            assert [i.transaction.id for i in delivered] == [t1.transaction_id]
            with conn.transaction():                                # inside a transaction: the snapshot's xmin
                assert journal_page(conn).items == []


def test_a_transaction_whose_part_is_still_prepared_on_a_worker_is_held_back(conn, db_url, citus):
    """On a cluster a transaction that wrote on several workers commits here first and on the
    workers after (2PC: COMMIT PREPARED): until a worker has committed its part, the horizon holds
    the transaction back, so the feed cannot deliver it without its entries nor move past it. The
    moment is made by hand: a part prepared on a worker under a gid that the coordinator records
    (pg_dist_transaction) in the transaction that posts, as Citus does. One server has no workers,
    and a committed transaction is below the horizon at once."""
    _accounts(conn, "a")
    if citus is None:
        [t1] = post(conn, [_top_up("t1", "a", 1)])
        assert conn.execute("select ledger.distributed()").fetchone() == (False,)
        created, recorded = conn.execute("select created_xact::text::bigint, recorded_at from ledger.transactions "
                                         "where id = %s", (t1.transaction_id,)).fetchone()
        known_at, xmin = journal_horizon(conn)
        assert created < xmin and recorded <= known_at
        return
    worker_url = citus.node_urls(conn.info.dbname)[1]
    gid = f"ledger_feed_test_{conn.info.dbname}"
    group = conn.execute("select groupid from pg_dist_node where nodeport = %s",
                         (int(psycopg.conninfo.conninfo_to_dict(worker_url)["port"]),)).fetchone()[0]
    with psycopg.connect(worker_url, autocommit=True) as worker:
        worker.execute("begin")
        worker.execute("select pg_current_xact_id()")
        worker.execute(sql.SQL("prepare transaction {}").format(sql.Literal(gid)))
        try:
            with conn.transaction():
                [t1] = post(conn, [_top_up("t1", "a", 100)])
                conn.execute("insert into pg_dist_transaction (groupid, gid) values (%s, %s)", (group, gid))
            created, recorded = conn.execute("select created_xact::text::bigint, recorded_at from ledger.transactions "
                                             "where id = %s", (t1.transaction_id,)).fetchone()
            known_at, xmin = journal_horizon(conn)
            assert xmin <= created and known_at < recorded
            assert t1.transaction_id not in {i.transaction.id for i in journal_page(conn, first=10).items}
        finally:
            worker.execute(sql.SQL("commit prepared {}").format(sql.Literal(gid)))
    delivered, _ = _follow(conn, None, until_ids=[t1.transaction_id])
    assert [i.transaction.id for i in delivered] == [t1.transaction_id]
    assert [(e.side, e.amount) for e in delivered[0].entries] == [("debit", 100), ("credit", 100)]
