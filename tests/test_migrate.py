"""Migrations apply in order to an empty database, then the definition files; both are recorded,
safe to run twice, and a database built before the definitions left the migrations upgrades."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import psycopg
import pytest
from book import BANK, WALLET_U1, WALLET_U2, open_book, spend, top_up

from ledger.audit import verify
from ledger.migrate import BEFORE_SPLIT, MigrationError, definitions, migrate, migrations, sql_dir
from ledger.posting import post_one
from ledger.schema_dump import schema_dump

BEFORE_SPLIT_DIR = Path(__file__).resolve().parent / "data" / "sql_before_split"


def _files(applied: list[str]) -> list[str]:
    """The files `migrate` applied, without what else it reports on a Citus cluster (the tables
    it placed, the roles it let log in on the workers: docs/scale-out.md)."""
    return [name for name in applied if name.endswith(".sql")]


def test_all_migrations_then_all_definitions_apply_to_an_empty_database_and_twice_is_a_no_op(empty_db):
    names = [m.name for m in migrations()]
    assert names == sorted(names) and names[0] == "0001_core.sql"
    files = [d.file_name for d in definitions()]
    assert _files(migrate(empty_db)) == names + files
    assert _files(migrate(empty_db)) == []
    with psycopg.connect(empty_db) as conn:
        recorded = [r[0] for r in conn.execute("select name from ledger.schema_migrations order by version")]
        defined = {r[0]: r[1] for r in conn.execute("select name, checksum from ledger.schema_definitions")}
        tables = {r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'ledger'")}
    assert recorded == names
    assert defined == {d.name: d.checksum for d in definitions()}
    assert {"accounts", "transactions", "entries", "balances", "open_holds", "period_closes"} <= tables


def test_the_migrated_database_runs_without_jit(empty_db):
    """Compiling costs more than any ledger query runs; new sessions start with JIT off."""
    migrate(empty_db)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("show jit").fetchone()[0] == "off"


def test_a_book_posted_before_the_engine_migration_upgrades_and_verifies(empty_db, tmp_path: Path):
    """0070 backfills each account's newest recorded time, and the engine is replaced in place: a
    book written by the engine of 0001/0002 keeps verifying and posting after it."""
    for path in BEFORE_SPLIT_DIR.glob("*.sql"):
        if path.name < "0070":
            shutil.copy(path, tmp_path / path.name)
    migrate(empty_db, directory=tmp_path)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        ids = open_book(conn)
        conn.execute("""select ledger.post_batch('[{"op": "transfer", "key": "old", "fp": "aa", "kind": "a.b",
                        "legs": [{"account": "assets:bank:icbc", "side": "debit", "amount": 7},
                                 {"account": "liabilities:wallets:U1", "side": "credit", "amount": 7}]}]')""")
        newest = conn.execute("select recorded_at from ledger.entries where account_id = %s",
                              (ids[WALLET_U1],)).fetchone()[0]
    applied = _files(migrate(empty_db))
    later = [m.name for m in migrations() if m.name >= "0070"]
    assert later[:2] == ["0070_posting_per_row_cost.sql", "0071_statement_opening.sql"]
    assert applied == later + [d.file_name for d in definitions()]
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute("select last_recorded_at from ledger.balances where account_id = %s",
                            (ids[WALLET_U1],)).fetchone()[0] == newest
        assert conn.execute("select last_recorded_at from ledger.balances where account_id = %s",
                            (ids["liabilities:wallets:U2"],)).fetchone()[0] is None
        top_up(conn, WALLET_U1, 5, "new")
        assert conn.execute("select version from ledger.balances where account_id = %s",
                            (ids[BANK],)).fetchone()[0] == 2
        assert verify(conn, progress=None).ok


def test_a_database_built_before_the_definitions_left_the_migrations_upgrades_in_place(empty_db):
    """Built by the migrations as they were (their checksums recorded), it takes the new layout:
    each old checksum is accepted once, every definition is applied, and the result is what a
    fresh migrate builds. Its book keeps posting and verifying."""
    assert _files(migrate(empty_db, directory=BEFORE_SPLIT_DIR)) == [m.name for m in migrations(BEFORE_SPLIT_DIR)]
    with psycopg.connect(empty_db, autocommit=True) as conn:
        ids = open_book(conn)
        top_up(conn, WALLET_U1, 100, "before-1")
        post_one(conn, spend(WALLET_U1, 30, "before-2"))
        conn.execute("select ledger.close_period(now() - interval '1 day')")

    before = {m.name for m in migrations(BEFORE_SPLIT_DIR)}
    later = [m.name for m in migrations() if m.name not in before]
    assert _files(migrate(empty_db)) == later + [d.file_name for d in definitions()]
    assert _files(migrate(empty_db)) == []
    with psycopg.connect(empty_db, autocommit=True) as conn:
        recorded = {r[0]: r[1] for r in conn.execute("select name, checksum from ledger.schema_migrations")}
        assert recorded == {m.name: m.checksum for m in migrations()}
        assert schema_dump(conn) == (sql_dir() / "schema.sql").read_text()
        top_up(conn, WALLET_U2, 50, "after-1")
        post_one(conn, spend(WALLET_U1, 20, "after-2"))
        assert conn.execute("select posted_credits - posted_debits from ledger.balances where account_id = %s",
                            (ids[WALLET_U1],)).fetchone()[0] == 50
        with pytest.raises(psycopg.DatabaseError, match="append-only") as refused:
            conn.execute("delete from ledger.entries")
        assert refused.value.sqlstate == "LD015"
        assert verify(conn, progress=None).ok


def test_the_checksums_before_the_split_are_those_of_the_old_files():
    listed = {}
    for line in (sql_dir() / BEFORE_SPLIT).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            version, checksum, name = line.split()
            listed[name] = (version, checksum)
    old = {path.name: (path.name[:4], hashlib.sha256(path.read_bytes()).hexdigest())
           for path in BEFORE_SPLIT_DIR.glob("*.sql")}
    assert listed == old
    # Every migration of the time before the split; later ones were written after it.
    assert sorted(name for name in old) == [m.name for m in migrations()][:len(old)]


def test_an_edited_migration_is_refused(empty_db, tmp_path: Path):
    (tmp_path / "0001_first.sql").write_text("create table ledger.t (x int);")
    migrate(empty_db, directory=tmp_path)
    (tmp_path / "0001_first.sql").write_text("create table ledger.t (x bigint);")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        migrate(empty_db, directory=tmp_path)


def test_a_checksum_from_before_the_split_is_accepted_once_for_its_version(empty_db, tmp_path: Path):
    first = "create table ledger.t (x int);\ncreate view ledger.v as select x from ledger.t;"
    (tmp_path / "0001_first.sql").write_text(first)
    migrate(empty_db, directory=tmp_path)
    (tmp_path / "0001_first.sql").write_text("create table ledger.t (x int);")
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "v.sql").write_text("create or replace view ledger.v as select x from ledger.t;")
    (tmp_path / BEFORE_SPLIT).write_text(f"# old\n0002 {hashlib.sha256(first.encode()).hexdigest()} 0002_x.sql\n")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        migrate(empty_db, directory=tmp_path)  # listed for another version
    (tmp_path / BEFORE_SPLIT).write_text(f"# old\n0001 {hashlib.sha256(first.encode()).hexdigest()} 0001_first.sql\n")
    assert _files(migrate(empty_db, directory=tmp_path)) == ["functions/v.sql"]
    (tmp_path / "0001_first.sql").write_text("create table ledger.t (x bigint);")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        migrate(empty_db, directory=tmp_path)


def _layout(directory: Path, files: dict[str, str]) -> None:
    (directory / "functions").mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


_TABLE = """create table ledger.t (x int);
do $$ begin create role ledger_app nologin; exception when duplicate_object then null; end $$;"""
_DOUBLE = "create or replace function ledger.double(p int) returns int language sql immutable as $$ select 2 * p $$;"
_VIEW = ("-- requires: double\n"
         "create or replace view ledger.doubled as select ledger.double(x) as y from ledger.t;\n"
         "grant select on ledger.doubled to ledger_app;")


def test_a_definition_is_applied_again_only_when_it_changed(empty_db, tmp_path: Path):
    _layout(tmp_path, {"0001_t.sql": _TABLE, "functions/double.sql": _DOUBLE, "functions/doubled.sql": _VIEW})
    assert _files(migrate(empty_db, directory=tmp_path)) == ["0001_t.sql", "functions/double.sql", "functions/doubled.sql"]
    assert _files(migrate(empty_db, directory=tmp_path)) == []
    (tmp_path / "functions" / "double.sql").write_text(_DOUBLE.replace("2 * p", "p + p"))
    assert _files(migrate(empty_db, directory=tmp_path)) == ["functions/double.sql"]
    (tmp_path / "functions" / "double.sql").unlink()
    (tmp_path / "functions" / "doubled.sql").write_text(_VIEW.replace("ledger.double(x)", "x * 2").replace(
        "-- requires: double\n", ""))
    assert _files(migrate(empty_db, directory=tmp_path)) == ["functions/doubled.sql"]
    with psycopg.connect(empty_db) as conn:
        assert [r[0] for r in conn.execute("select name from ledger.schema_definitions")] == ["doubled"]


def test_after_a_migration_every_definition_is_applied_again_and_heals_what_it_dropped(empty_db, tmp_path: Path):
    _layout(tmp_path, {"0001_t.sql": _TABLE, "functions/double.sql": _DOUBLE, "functions/doubled.sql": _VIEW})
    migrate(empty_db, directory=tmp_path)
    # A column type under a view cannot change: the migration drops the view, the definitions heal it.
    (tmp_path / "0002_wider.sql").write_text(
        "drop view ledger.doubled; alter table ledger.t alter column x type bigint; insert into ledger.t values (21);")
    (tmp_path / "functions" / "double.sql").write_text(_DOUBLE.replace("(p int)", "(p bigint)").replace(
        "returns int", "returns bigint"))
    assert _files(migrate(empty_db, directory=tmp_path)) == ["0002_wider.sql", "functions/double.sql", "functions/doubled.sql"]
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select y from ledger.doubled").fetchone()[0] == 42
        assert conn.execute("select has_table_privilege('ledger_app', 'ledger.doubled', 'select')").fetchone()[0]


def test_a_run_stopped_before_the_definitions_applies_them_all_next_time(empty_db, tmp_path: Path):
    _layout(tmp_path, {"0001_t.sql": _TABLE, "functions/double.sql": _DOUBLE, "functions/doubled.sql": _VIEW})
    migrate(empty_db, directory=tmp_path)
    (tmp_path / "0002_drop.sql").write_text("drop view ledger.doubled;")
    (tmp_path / "functions" / "double.sql").write_text("select 1/0;")
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate(empty_db, directory=tmp_path)
    (tmp_path / "functions" / "double.sql").write_text(_DOUBLE)
    assert _files(migrate(empty_db, directory=tmp_path)) == ["functions/double.sql", "functions/doubled.sql"]
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select to_regclass('ledger.doubled') is not null").fetchone()[0]


@pytest.mark.parametrize("files,error", [
    ({"functions/a.sql": "-- requires: b\nselect 1;", "functions/b.sql": "-- requires: a\nselect 1;"},
     "in a cycle: a requires b, b requires a"),
    ({"functions/a.sql": "-- requires: nowhere\nselect 1;"}, "a.sql requires nowhere, but there is no"),
    ({"functions/A-b.sql": "select 1;"}, "named what_they_define.sql"),
])
def test_a_bad_definition_layout_is_refused_before_anything_is_applied(empty_db, tmp_path: Path, files, error):
    _layout(tmp_path, {"0001_t.sql": _TABLE, **files})
    with pytest.raises(MigrationError, match=error):
        migrate(empty_db, directory=tmp_path)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select to_regclass('ledger.schema_migrations') is null").fetchone()[0]


def test_definitions_are_applied_after_those_they_require(tmp_path: Path):
    _layout(tmp_path, {"functions/a.sql": "-- requires: c\n-- requires: b\nselect 1;",
                       "functions/b.sql": "-- requires: c\n", "functions/c.sql": "", "functions/d.sql": ""})
    assert [d.name for d in definitions(tmp_path)] == ["c", "b", "a", "d"]
    ordered = [d.name for d in definitions()]
    for definition in definitions():
        assert all(ordered.index(r) < ordered.index(definition.name) for r in definition.requires), definition.name


def test_concurrent_runners_apply_each_file_once(empty_db):
    applied: list[list[str]] = []
    runners = [threading.Thread(target=lambda: applied.append(_files(migrate(empty_db)))) for _ in range(2)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    assert sorted(applied, key=len) == [[], [m.name for m in migrations()] + [d.file_name for d in definitions()]]


def test_a_failing_migration_leaves_nothing_half_applied(empty_db, tmp_path: Path):
    (tmp_path / "0001_ok.sql").write_text("create table ledger.a (x int);")
    (tmp_path / "0002_bad.sql").write_text("create table ledger.b (x int); select 1/0;")
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate(empty_db, directory=tmp_path)
    with psycopg.connect(empty_db) as conn:
        found = conn.execute("select to_regclass('ledger.a') is not null, to_regclass('ledger.b') is null").fetchone()
        assert found == (True, True)
        assert [r[0] for r in conn.execute("select name from ledger.schema_migrations")] == ["0001_ok.sql"]


def test_badly_named_migrations_are_refused(tmp_path: Path):
    (tmp_path / "1_first.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match="NNNN_what.sql"):
        migrations(tmp_path)
