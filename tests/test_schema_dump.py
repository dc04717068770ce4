"""sql/schema.sql is what a fresh migrate builds, dumped the same way on every PostgreSQL version
the suite runs on."""

from __future__ import annotations

import difflib
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ledger.migrate import migrate
from ledger.schema_dump import main, schema_dump

SNAPSHOT = Path(__file__).resolve().parent.parent / "sql" / "schema.sql"


def test_sql_schema_sql_is_the_dump_of_a_freshly_migrated_database(server_url, template_db, citus, request, capsys):
    # The session's template is a fresh migrate that no test writes to. On Citus it takes no
    # connections (tests/citus_databases.py), and a copy lacks its database settings (jit): a
    # database is migrated for the dump instead.
    if citus is None:
        fresh = make_conninfo(server_url, dbname=template_db)
    else:
        fresh = request.getfixturevalue("empty_db")
        migrate(fresh)
    assert main([fresh]) == 0
    dumped = capsys.readouterr().out
    expected = SNAPSHOT.read_text()
    if dumped != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), dumped.splitlines(True),
                                            "sql/schema.sql", "fresh migrate"))
        pytest.fail("the schema changed: regenerate sql/schema.sql with "
                    f"`.venv/bin/python -m ledger.schema_dump --fresh '{server_url}' > sql/schema.sql` "
                    f"and review the diff:\n{diff}")


def test_the_dump_shows_a_changed_body_setting_grant_and_column(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = schema_dump(conn).splitlines()
        conn.execute("""create or replace function ledger.credit_bucket(p_days_past_due int, p_closed text,
                        p_write_off_dpd int) returns text language sql immutable set work_mem = '8MB'
                        as $$ select 'current' $$""")
        conn.execute("grant execute on function ledger.version_known_at(bigint, timestamptz) to ledger_app")
        conn.execute("alter table ledger.settings alter column value drop not null")
        after = schema_dump(conn).splitlines()
    changed = [line for line in difflib.ndiff(before, after) if line[:1] in "+-"]
    assert len(changed) == 6, changed  # source and not null: one line out, one in
    assert "+   set work_mem=8MB" in changed and "+   grant EXECUTE to ledger_app" in changed
    assert "-   column value text not null" in changed and "+   column value text" in changed
    assert any(line.startswith("+   source sha256 ") for line in changed)
