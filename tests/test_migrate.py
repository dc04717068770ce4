"""Migrations apply in order to an empty database, are recorded, and are safe to run twice."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from book import BANK, WALLET_U1, open_book, top_up
from ledger.audit import verify
from ledger.migrate import MigrationError, migrate, migrations, sql_dir


@pytest.fixture
def empty_db(server_url):
    name = f"ledger_empty_{uuid.uuid4().hex[:10]}"
    admin = make_conninfo(server_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    yield make_conninfo(server_url, dbname=name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def test_all_migrations_apply_to_an_empty_database_and_twice_is_a_no_op(empty_db):
    names = [m.name for m in migrations()]
    assert names == sorted(names) and names[0] == "0001_core.sql"
    assert migrate(empty_db) == names
    assert migrate(empty_db) == []
    with psycopg.connect(empty_db) as conn:
        recorded = [r[0] for r in conn.execute("select name from ledger.schema_migrations order by version")]
        tables = {r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'ledger'")}
    assert recorded == names
    assert {"accounts", "transactions", "entries", "balances", "open_holds", "period_closes"} <= tables


def test_the_migrated_database_runs_without_jit(empty_db):
    """Compiling costs more than any ledger query runs; new sessions start with JIT off."""
    migrate(empty_db)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("show jit").fetchone()[0] == "off"


def test_a_book_posted_before_the_engine_migration_upgrades_and_verifies(empty_db, tmp_path: Path):
    """0070 replaces the engine in place and backfills each account's newest recorded time: a book
    written by the engine of 0001/0002 keeps verifying and posting after it."""
    for migration in migrations():
        if migration.version < "0070":
            shutil.copy(sql_dir() / migration.name, tmp_path / migration.name)
    migrate(empty_db, directory=tmp_path)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        ids = open_book(conn)
        conn.execute("""select ledger.post_batch('[{"op": "transfer", "key": "old", "fp": "aa", "kind": "a.b",
                        "legs": [{"account": "assets:bank:icbc", "side": "debit", "amount": 7},
                                 {"account": "liabilities:wallets:U1", "side": "credit", "amount": 7}]}]')""")
        newest = conn.execute("select recorded_at from ledger.entries where account_id = %s",
                              (ids[WALLET_U1],)).fetchone()[0]
    assert "0070_posting_per_row_cost.sql" in migrate(empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute("select last_recorded_at from ledger.balances where account_id = %s",
                            (ids[WALLET_U1],)).fetchone()[0] == newest
        assert conn.execute("select last_recorded_at from ledger.balances where account_id = %s",
                            (ids["liabilities:wallets:U2"],)).fetchone()[0] is None
        top_up(conn, WALLET_U1, 5, "new")
        assert conn.execute("select version from ledger.balances where account_id = %s",
                            (ids[BANK],)).fetchone()[0] == 2
        assert verify(conn, progress=None).ok


def test_an_edited_migration_is_refused(empty_db, tmp_path: Path):
    (tmp_path / "0001_first.sql").write_text("create table ledger.t (x int);")
    migrate(empty_db, directory=tmp_path)
    (tmp_path / "0001_first.sql").write_text("create table ledger.t (x bigint);")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        migrate(empty_db, directory=tmp_path)


def test_a_failing_migration_leaves_nothing_half_applied(empty_db, tmp_path: Path):
    (tmp_path / "0001_ok.sql").write_text("create table ledger.a (x int);")
    (tmp_path / "0002_bad.sql").write_text("create table ledger.b (x int); select 1/0;")
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate(empty_db, directory=tmp_path)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select to_regclass('ledger.a') is not null, to_regclass('ledger.b') is null").fetchone() == (True, True)
        assert [r[0] for r in conn.execute("select name from ledger.schema_migrations")] == ["0001_ok.sql"]


def test_badly_named_migrations_are_refused(tmp_path: Path):
    (tmp_path / "1_first.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match="NNNN_what.sql"):
        migrations(tmp_path)
