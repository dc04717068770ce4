"""Each filter of `transactions` and `accounts` is read through its index
(sql/0098_finding_indexes.sql), shown by the planner's own plan of the statement the code runs.

The journal here holds a few thousand transactions across days, kinds and accounts, analysed, so
the planner judges real statistics; sequential scans are disabled so that a plan reading the whole
table cannot hide behind a small table's cheapness, while every index still competes with every
other (a filter read through the primary key would fail the test).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ledger.accounts import AccountType, NewAccount, Side, accounts_query, create_account
from ledger.posting import Leg, Transfer, post
from ledger.transaction_search import TransactionFilter, find_transactions, position_of, search_query

ACCOUNTS = 40
TRANSACTIONS = 4_000
START = datetime(2026, 1, 1, tzinfo=UTC)


def _code(i: int) -> str:
    return f"liabilities:wallets:X{i}"


def _wallet_of(n: int) -> str:
    """Half the transactions go to X0 (a busy account), the rest spread over the others."""
    return _code(0) if n % 2 == 0 else _code(n % ACCOUNTS)


@pytest.fixture(scope="module")
def journal(server_url: str, template_db: str, _dropper: Any, citus: Any) -> Any:
    """One populated database for the module (read only by its tests); on Citus made on every
    node (tests/citus_databases.py)."""
    import uuid

    from psycopg.conninfo import make_conninfo

    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    if citus is not None:
        url = citus.copy(template_db, name)
    else:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name),
                                                                         sql.Identifier(template_db)))
        url = make_conninfo(server_url, dbname=name)
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, NewAccount("assets:bank", "Bank", AccountType.ASSET, "CNY"))
        for i in range(ACCOUNTS):
            create_account(conn, NewAccount(_code(i), f"W{i}", AccountType.LIABILITY, "CNY", holder_id=f"H{i}",
                                            metadata={"segment": f"s{i}"}))
        conn.execute("""insert into ledger.accounts (code, name, type, normal_side, currency, metadata)
                        select 'expenses:misc:' || g, 'misc', 'expense', 'debit', 'CNY',
                               jsonb_build_object('n', g) from generate_series(1, 3000) g""")
        batch = []
        for n in range(TRANSACTIONS):
            batch.append(Transfer(f"k{n}", "payment.rare" if n % 500 == 0 else f"payment.kind{n % 4}",
                                  [Leg("assets:bank", Side.DEBIT, 1 + n % 7), Leg(_wallet_of(n), Side.CREDIT, 1 + n % 7)],
                                  effective_at=START + timedelta(minutes=15 * n), metadata={"order": f"o{n}"}))
            if len(batch) == 10:  # small batches: recorded times spread as in real use
                post(conn, batch)
                batch = []
        conn.execute("analyze")
    yield url
    _dropper.drop(name)


def _index_names(plan: Any) -> set[str]:
    """The indexes a plan reads; on Citus the plan a node runs for a shard is part of it, and its
    index is the shard's (transactions_kind_idx_102012), named here by the table's."""
    found: set[str] = set()
    pending = [plan]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "Index Name" in node:
                found.add(re.sub(r"_[0-9]+$", "", node["Index Name"]))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def _plan(url: str, query: sql.Composed, params: dict[str, Any]) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        # On Citus the shards' statements are planned on the nodes that hold them: the SET goes
        # there too (a setting of that name is nothing on one server).
        conn.execute("set local citus.propagate_set_commands = 'local'")
        conn.execute("set local enable_seqscan = off")
        row = conn.execute(sql.SQL("explain (format json) ") + query, params).fetchone()
    assert row is not None
    plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return _index_names(plan)


def _recorded_window(url: str) -> tuple[datetime, datetime]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select min(recorded_at), max(recorded_at) from ledger.transactions where id between "
                           "1000 and 1010").fetchone()
    assert row is not None
    return row[0], row[1] + timedelta(microseconds=1)


CASES = {
    "kind": (TransactionFilter(kind="payment.rare"), "transactions_kind_idx"),
    "accountCode": (TransactionFilter(account_code=_code(7)), "entries_account_transaction_idx"),
    "metadata": (TransactionFilter(metadata={"order": "o1234"}), "transactions_metadata_idx"),
    "effective": (TransactionFilter(effective_from=START + timedelta(days=10),
                                    effective_to=START + timedelta(days=10, hours=2)), "transactions_effective_idx"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_transaction_filter_reads_its_index(journal, name):
    wanted, index = CASES[name]
    with psycopg.connect(journal, autocommit=True) as conn:
        composed = search_query(conn, wanted, limit=101)
        assert composed is not None
        found = find_transactions(conn, wanted, limit=101)
    assert found, "the filter matches something, so the plan is of a real search"
    assert index in _plan(journal, *composed)


def test_the_recorded_range_reads_its_index(journal):
    start, end = _recorded_window(journal)
    wanted = TransactionFilter(recorded_from=start, recorded_to=end)
    with psycopg.connect(journal, autocommit=True) as conn:
        composed = search_query(conn, wanted, limit=101)
        assert composed is not None
        assert find_transactions(conn, wanted, limit=101)
    assert "transactions_recorded_idx" in _plan(journal, *composed)


def test_a_holder_search_reads_the_per_account_index(journal):
    with psycopg.connect(journal, autocommit=True) as conn:
        composed = search_query(conn, TransactionFilter(holder_id="H3"), limit=101)
    assert composed is not None
    assert "entries_account_transaction_idx" in _plan(journal, *composed)


def test_the_account_metadata_filter_reads_its_index(journal):
    query, params = accounts_query(metadata={"n": 1234}, limit=101)
    with psycopg.connect(journal, autocommit=True) as conn:
        assert [row[1] for row in conn.execute(query, params).fetchall()] == ["expenses:misc:1234"]
    assert "accounts_metadata_idx" in _plan(journal, query, params)


PAGED = {
    "kind": TransactionFilter(kind="payment.kind1"),
    "accountCode": TransactionFilter(account_code=_code(0)),
    "none": TransactionFilter(),
    # Deep in the past: ordered by id, the planner would read every newer transaction.
    "effective range": TransactionFilter(effective_from=START + timedelta(days=5), effective_to=START + timedelta(days=10)),
}


@pytest.mark.parametrize("name", sorted(PAGED))
def test_a_page_reads_about_a_page_of_rows(journal, name):
    """Cost follows the page, not the journal: a second page of 11, starting in the middle of the
    journal or of the range, reads a few dozen rows at most (rows returned and filtered out by
    every scan, from EXPLAIN ANALYZE) out of thousands."""
    wanted = PAGED[name]
    with psycopg.connect(journal, autocommit=True) as conn:
        first = find_transactions(conn, wanted, after=None if wanted.effective_from else {"id": TRANSACTIONS // 2},
                                  limit=11)
        position = position_of(wanted, first[-1])
    with psycopg.connect(journal, autocommit=True) as conn:
        composed = search_query(conn, wanted, after=position, limit=11)
        assert composed is not None
        row = conn.execute(sql.SQL("explain (analyze, format json) ") + composed[0], composed[1]).fetchone()
    assert row is not None
    plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    scans = [node for node in _nodes(plan) if "Scan" in str(node.get("Node Type", ""))]
    if name == "effective range":
        assert {node.get("Index Name") for node in scans} >= {"transactions_effective_idx"}
    read = sum(node.get("Actual Rows", 0) * node.get("Actual Loops", 1) + node.get("Rows Removed by Filter", 0)
               for node in scans)
    assert scans and read <= 100, (read, TRANSACTIONS)


def _nodes(plan: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    pending = [plan]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            found.append(node)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found

