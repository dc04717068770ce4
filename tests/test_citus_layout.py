"""The Citus layout's rules that hold on every server: the list of tests not run on Citus is
well formed, and on one server `migrate` places nothing (docs/scale-out.md)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from conftest import not_on_citus

from ledger.distribution import DistributionError, is_distributed_cluster, statements, wanted

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_listed_as_not_on_citus_exists_and_gives_a_reason():
    listed = not_on_citus()
    assert listed, "docs/scale-out.md lists its tests in the table under 'Tests not run on Citus'"
    for test, reason in listed.items():
        assert (ROOT / test.split("::")[0]).is_file(), test
        assert len(reason) > 20, test


def test_on_one_server_nothing_is_distributed(conn, monkeypatch):
    monkeypatch.setenv("LEDGER_DISTRIBUTION", "auto")
    citus = conn.execute("select exists (select from pg_extension where extname = 'citus')").fetchone()[0]
    assert wanted(conn) == citus
    assert is_distributed_cluster(conn) == citus


def test_the_distribution_setting_is_checked(conn, monkeypatch):
    citus = conn.execute("select exists (select from pg_extension where extname = 'citus')").fetchone()[0]
    monkeypatch.setenv("LEDGER_DISTRIBUTION", "none")
    assert wanted(conn) is False
    monkeypatch.setenv("LEDGER_DISTRIBUTION", "citus")
    if citus:
        assert wanted(conn) is True
    else:
        with pytest.raises(DistributionError, match="no citus extension"):
            wanted(conn)
    monkeypatch.setenv("LEDGER_DISTRIBUTION", "sharded")
    with pytest.raises(DistributionError, match="auto, citus or none"):
        wanted(conn)


def test_a_definition_file_splits_into_the_statements_it_runs(conn):
    script = """-- a comment; with a semicolon
select $body$a;b$body$ as t;
select 1;  /* ; */ select ';' as "x;y";
"""
    parts = statements(script)
    assert len(parts) == 3
    assert [conn.execute(p.encode()).fetchall() for p in parts] == [[("a;b",)], [(1,)], [(";",)]]


def test_on_one_server_on_worker_node_is_false(conn):
    assert conn.execute("select ledger.on_worker_node()").fetchone() == (False,)
    with psycopg.connect(conn.info.dsn) as other:
        assert other.execute("select ledger.on_worker_node()").fetchone() == (False,)
