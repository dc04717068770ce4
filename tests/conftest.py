"""Every test runs against a real PostgreSQL: `DATABASE_URL` when set, else an embedded server
started for the session. Each test gets a fresh database copied from a migrated template."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ledger.database import start_embedded
from ledger.migrate import migrate


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="ledger-test-pg-") as tmp:
        os.chmod(tmp, 0o755)  # the embedded server runs as its own system user when we are root
        yield start_embedded(Path(tmp) / "data", delete_on_exit=True)


def _admin(server_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(make_conninfo(server_url, dbname="postgres"), autocommit=True)


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    name = f"ledger_template_{os.getpid()}"
    with _admin(server_url) as admin:
        admin.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    migrate(make_conninfo(server_url, dbname=name))
    yield name
    with _admin(server_url) as admin:
        admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture
def db_url(server_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    with _admin(server_url) as admin:
        admin.execute(sql.SQL("create database {} template {}").format(
            sql.Identifier(name), sql.Identifier(template_db)))
    yield make_conninfo(server_url, dbname=name)
    with _admin(server_url) as admin:
        admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


# GraphQL API -------------------------------------------------------------------------------------

@pytest.fixture
def api(db_url: str) -> Iterator[Any]:
    """The GraphQL app on the test database, called over HTTP (see tests/graphql_client.py)."""
    from starlette.testclient import TestClient

    from graphql_api.app import create_app
    from graphql_client import Api

    with TestClient(create_app(db_url)) as client:
        yield Api(client, db_url)


@pytest.fixture
def token(db_url: str) -> Any:
    """`token(role, holder_id=None)` -> a new bearer token in the test database."""
    from ledger.tokens import create_token

    def make(role: str, holder_id: str | None = None) -> str:
        with psycopg.connect(db_url, autocommit=True) as connection:
            return create_token(connection, role, holder_id).token
    return make
