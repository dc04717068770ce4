"""Every test runs against a real PostgreSQL: `DATABASE_URL` when set, else an embedded server
started for the session. Each test gets a fresh database copied from a migrated template."""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from citus_databases import CitusServers, citus_servers
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ledger.database import start_embedded
from ledger.migrate import migrate


def pytest_configure(config: pytest.Config) -> None:
    """Without DATABASE_URL, start one embedded server for the whole run, before any worker of
    pytest-xdist starts: the workers inherit its URL, so they share it rather than each starting
    (and paying for) a server of its own."""
    if os.environ.get("DATABASE_URL") or hasattr(config, "workerinput"):
        return
    tmp = tempfile.mkdtemp(prefix="ledger-test-pg-")
    os.chmod(tmp, 0o755)  # the embedded server runs as its own system user when we are root
    # atexit runs last-registered first: the server (registered by start_embedded) stops before
    # its directory goes.
    atexit.register(shutil.rmtree, tmp, True)
    os.environ["DATABASE_URL"] = start_embedded(Path(tmp) / "data", delete_on_exit=True)
    os.environ[_SERVER_IS_THROWAWAY] = "1"


# Set when the run started its own server, which is deleted whole at the end: the databases still
# waiting to be dropped then are left to go with it.
_SERVER_IS_THROWAWAY = "LEDGER_TEST_SERVER_IS_THROWAWAY"


@pytest.fixture(scope="session")
def server_url() -> str:
    return os.environ["DATABASE_URL"]


def _admin(server_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(make_conninfo(server_url, dbname="postgres"), autocommit=True)


@pytest.fixture(scope="session")
def citus(server_url: str) -> CitusServers | None:
    """The Citus cluster when DATABASE_URL is a coordinator with workers (docs/scale-out.md):
    then every test database is made on each node (tests/citus_databases.py)."""
    return citus_servers(server_url)


def _on_citus(config: pytest.Config) -> bool:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return False
    cached = getattr(config, "_ledger_on_citus", None)
    if cached is None:
        cached = citus_servers(url) is not None
        config._ledger_on_citus = cached  # type: ignore[attr-defined]
    return bool(cached)


_NOT_ON_CITUS_DOC = Path(__file__).resolve().parent.parent / "docs" / "scale-out.md"


def not_on_citus() -> dict[str, str]:
    """The tests docs/scale-out.md lists as not run on Citus: test path (or node id) -> reason."""
    listed: dict[str, str] = {}
    text = _NOT_ON_CITUS_DOC.read_text(encoding="utf-8")
    section = text.split("## Tests not run on Citus", 1)[1] if "## Tests not run on Citus" in text else ""
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`tests/"):
            listed[cells[0].strip("`")] = cells[1]
    return listed


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests docs/scale-out.md lists get the marker `not_on_citus` with their reason; on a
    Citus cluster they are deselected, everywhere else they run like any other."""
    listed = not_on_citus()
    for item in items:
        for test, reason in listed.items():
            if item.nodeid == test or item.nodeid.startswith((test + "::", test + "[")):
                item.add_marker(pytest.mark.not_on_citus(reason=reason))
    # LEDGER_CITUS_ALL_TESTS=1 runs the listed tests on Citus too (to see which pass now).
    if not _on_citus(config) or os.environ.get("LEDGER_CITUS_ALL_TESTS"):
        return
    keep = [item for item in items if item.get_closest_marker("not_on_citus") is None]
    dropped = [item for item in items if item.get_closest_marker("not_on_citus") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def template_db(server_url: str, _dropper: _Dropper, citus: CitusServers | None) -> Iterator[str]:
    name = f"ledger_template_{os.getpid()}"
    if citus is not None:
        with citus.one_at_a_time():
            citus.drop(name)
            migrate(citus.create_empty(name))
            citus.freeze(name)
        yield name
        _dropper.drop(name)
        return
    with _admin(server_url) as admin:
        admin.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    migrate(make_conninfo(server_url, dbname=name))
    yield name
    _dropper.drop(name)


@pytest.fixture(scope="session")
def empty_template_db(citus: CitusServers | None, _dropper: _Dropper) -> Iterator[str | None]:
    """On Citus: an empty database with the extension and the workers registered, to copy."""
    if citus is None:
        yield None
        return
    name = f"ledger_empty_template_{os.getpid()}"
    citus.drop(name)
    citus.create_empty(name)
    citus.freeze(name)
    yield name
    _dropper.drop(name)


class _Dropper:
    """Drops finished tests' databases on threads of their own: DROP DATABASE waits for a
    checkpoint and costs several times what CREATE DATABASE ... TEMPLATE does, and nothing waits
    for it but the end of the run. Drops under way at once share their checkpoints."""

    threads = 2

    def __init__(self, server_url: str) -> None:
        self._server_url = server_url
        self._citus = citus_servers(server_url)
        self._names: queue.Queue[str | None] = queue.Queue()
        self._workers = [threading.Thread(target=self._run, name=f"drop-test-databases-{n}", daemon=True)
                         for n in range(self.threads)]
        for worker in self._workers:
            worker.start()

    def drop(self, name: str) -> None:
        self._names.put(name)

    def close(self, *, drain: bool = True) -> None:
        """Stop the threads; with `drain` False the databases still queued are left undropped."""
        if not drain:
            while not self._names.empty():
                self._names.get_nowait()
        for _ in self._workers:
            self._names.put(None)
        for worker in self._workers:
            worker.join()

    def _run(self) -> None:
        # A drop that fails is reported and the thread goes on: a thread that died on one would
        # leave every database queued after it on the server (on a cluster, gigabytes a run).
        while (name := self._names.get()) is not None:
            try:
                if self._citus is not None:
                    self._citus.drop(name)
                else:
                    with _admin(self._server_url) as admin:
                        admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            except psycopg.Error as exc:
                print(f"could not drop the test database {name}: {exc}", file=sys.stderr)


_droppers: list[_Dropper] = []


@pytest.fixture(scope="session")
def _dropper(server_url: str) -> _Dropper:
    if not _droppers:
        _droppers.append(_Dropper(server_url))
    return _droppers[0]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The backlog of drops is waited for here, after the last test, not inside its time limit
    (and not at all on a server the run started, which goes whole)."""
    for dropper in _droppers:
        dropper.close(drain=not os.environ.get(_SERVER_IS_THROWAWAY))


@pytest.fixture
def db_url(server_url: str, template_db: str, _dropper: _Dropper, citus: CitusServers | None) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    if citus is not None:
        yield citus.copy(template_db, name)
        _dropper.drop(name)
        return
    with _admin(server_url) as admin:
        admin.execute(sql.SQL("create database {} template {}").format(
            sql.Identifier(name), sql.Identifier(template_db)))
    yield make_conninfo(server_url, dbname=name)
    _dropper.drop(name)


@pytest.fixture
def empty_db(server_url: str, _dropper: _Dropper, citus: CitusServers | None,
             empty_template_db: str | None) -> Iterator[str]:
    """A new database with nothing in it, for tests of migrations (on Citus: nothing but the
    extension, with the workers registered)."""
    name = f"ledger_empty_{uuid.uuid4().hex[:10]}"
    if citus is not None and empty_template_db is not None:
        yield citus.copy(empty_template_db, name)
        _dropper.drop(name)
        return
    with _admin(server_url) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    yield make_conninfo(server_url, dbname=name)
    _dropper.drop(name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


# GraphQL API -------------------------------------------------------------------------------------

@pytest.fixture
def api(db_url: str) -> Iterator[Any]:
    """The GraphQL app on the test database, called over HTTP (see tests/graphql_client.py)."""
    from graphql_client import Api
    from starlette.testclient import TestClient

    from graphql_api.app import create_app

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
