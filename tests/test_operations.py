"""What an operations team runs the ledger with, through HTTP: liveness and readiness, the
version, Prometheus metrics and JSON logs carrying the request id."""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from starlette.testclient import TestClient

from graphql_api.app import create_app
from ledger_cli.main import main


def test_version_is_the_package_version(capsys):
    import importlib.metadata

    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out.strip() == f"ledger-core {importlib.metadata.version('ledger-core')}"


def test_livez_and_readyz_on_a_current_database(api):
    assert api.client.get("/livez").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


def test_readyz_503_while_a_migration_or_definition_is_pending(api, conn):
    conn.execute("update ledger.schema_definitions set checksum = 'old' where name = 'chain'")
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["pending"] == ["functions/chain.sql"]
    conn.execute("delete from ledger.schema_migrations where version = (select max(version) from ledger.schema_migrations)")
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["pendingCount"] == 2
    assert api.client.get("/livez").status_code == 200  # the process itself is fine


def test_readyz_503_on_an_empty_database_while_livez_answers(server_url):
    name = f"ledger_test_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(make_conninfo(server_url, dbname="postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        with TestClient(create_app(make_conninfo(server_url, dbname=name))) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["reason"].startswith("migrations pending")
            assert ready.json()["pendingCount"] > 10
            assert client.get("/livez").json() == {"status": "ok"}
            assert client.get("/healthz").status_code == 200  # unchanged: the database answers
    finally:
        with psycopg.connect(make_conninfo(server_url, dbname="postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
