"""Against a database that takes no writes (here `default_transaction_read_only = on`, as on a
standby): `migrate` writes nothing when nothing is pending and says why it cannot when something
is; `token create` answers with a clear error; `serve` starts and answers queries."""

from __future__ import annotations

import os
import subprocess
import time

import psycopg
import pytest
from book import BANK, WALLET_U1, open_book
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from test_graphql_mutations import POST, transfer
from test_serve import CLI, free_port, request

from ledger.migrate import MigrationError, database_read_only, migrate
from ledger.tokens import create_token
from ledger_cli.main import main


@pytest.fixture
def read_only(db_url, conn):
    """The test database, read-only for every session opened from now on (`conn` stays writable)."""
    name = sql.Identifier(conninfo_to_dict(db_url)["dbname"])
    conn.execute(sql.SQL("alter database {} set default_transaction_read_only = on").format(name))


def test_migrate_writes_nothing_when_nothing_is_pending(db_url, read_only):
    with psycopg.connect(db_url) as conn:
        assert database_read_only(conn)
    assert migrate(db_url) == []


def test_migrate_says_why_it_cannot_apply_what_is_pending(db_url, read_only, tmp_path):
    from ledger.migrate import sql_dir

    for path in sql_dir().glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "functions").mkdir()
    for path in (sql_dir() / "functions").glob("*.sql"):
        (tmp_path / "functions" / path.name).write_text(path.read_text())
    (tmp_path / "9999_more.sql").write_text("create table ledger.more (id int);\n")
    with pytest.raises(MigrationError) as refused:
        migrate(db_url, directory=tmp_path)
    assert "read-only" in str(refused.value) and "9999_more.sql" in str(refused.value)


def test_token_create_answers_clearly(db_url, read_only, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["token", "create", "--role", "auditor"]) == 2
    err = capsys.readouterr().err
    assert "READ_ONLY_DATABASE" in err and "read-only" in err and "Traceback" not in err
    assert main(["token", "list"]) == 0  # reading still works


def test_serve_starts_and_answers_queries(db_url, conn, read_only):
    open_book(conn)
    token = create_token(conn, "auditor").token  # on a session opened before the database went read-only
    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--port", str(port)], env={**os.environ, "DATABASE_URL": db_url},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        said = []
        while not said or "serving" not in said[-1]:
            line = server.stdout.readline()
            assert line, "".join(said)
            said.append(line)
        assert any("read-only" in line for line in said)
        for _ in range(100):
            try:
                if request(port)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        status, body = request(port, {"query": "{ trialBalance { balanced } }"}, token)
        assert (status, body) == (200, {"data": {"trialBalance": {"balanced": True}}})
        admin = create_token(conn, "admin").token
        status, body = request(port, {"query": POST, "variables": transfer(
            "read-only", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)])}, admin)
        refused = body["data"]["postTransaction"]
        assert (status, refused["__typename"], refused["code"]) == (200, "OperationRefused", "READ_ONLY_DATABASE")
    finally:
        server.kill()
        server.communicate()
