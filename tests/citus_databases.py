"""Test databases on a Citus cluster: each is made on the coordinator and on every worker.

CREATE DATABASE on a Citus coordinator makes the database there alone, and a new database has
neither the extension nor the workers registered. So a database for the suite is made on every
node under one name; the migrated template is copied node by node (CREATE DATABASE ... TEMPLATE
on each), which copies the coordinator's metadata and the workers' shards together: the copies
name the same shards on the same nodes, under the new database's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["CitusServers", "citus_servers"]

_TEMPLATE_LOCK_KEY = 0x1ED6E4  # any constant the suite uses for nothing else


class CitusServers:
    def __init__(self, coordinator_url: str, workers: list[tuple[str, int]]) -> None:
        self.coordinator_url = coordinator_url
        self.workers = workers

    def node_urls(self, dbname: str) -> list[str]:
        return [make_conninfo(self.coordinator_url, dbname=dbname)] + [
            make_conninfo(self.coordinator_url, host=host, port=str(port), dbname=dbname)
            for host, port in self.workers]

    def _each_admin(self, statement: sql.Composable) -> None:
        for url in self.node_urls("postgres"):
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("set citus.enable_create_database_propagation = off")
                admin.execute(statement)

    def create_empty(self, name: str) -> str:
        """A database with the extension on every node and the workers registered."""
        self._each_admin(sql.SQL("create database {}").format(sql.Identifier(name)))
        for url in self.node_urls(name)[1:]:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("create extension citus")
        url = self.node_urls(name)[0]
        parts = conninfo_to_dict(self.coordinator_url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create extension citus")
            conn.execute("select citus_set_coordinator_host(%s, %s)",
                         (parts.get("host") or "127.0.0.1", int(parts.get("port") or 5432)))
            for host, port in self.workers:
                conn.execute("select citus_add_node(%s, %s)", (host, port))
        return url

    @contextmanager
    def one_at_a_time(self) -> Iterator[None]:
        """Held while a test worker builds its template: registering the workers and migrating
        change rows every database of a node shares (roles and their grants), and two databases
        doing so at once fail on a worker with "tuple concurrently updated". An advisory lock in
        the coordinator's `postgres` database is one lock for every test worker."""
        with psycopg.connect(self.node_urls("postgres")[0], autocommit=True) as lock:
            lock.execute("select pg_advisory_lock(%s)", (_TEMPLATE_LOCK_KEY,))
            try:
                yield
            finally:
                lock.execute("select pg_advisory_unlock(%s)", (_TEMPLATE_LOCK_KEY,))

    def freeze(self, name: str) -> None:
        """Make `name` fit to copy: no connections to it on any node, and none allowed (Citus's
        maintenance daemon would otherwise connect again and block CREATE DATABASE ... TEMPLATE)."""
        for url in self.node_urls("postgres"):
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("set citus.enable_ddl_propagation = off")
                admin.execute(sql.SQL("alter database {} allow_connections false").format(sql.Identifier(name)))
                admin.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                              "where datname = %s and pid <> pg_backend_pid()", (name,))

    def copy(self, template: str, name: str) -> str:
        # A background worker (Citus's maintenance daemon) may hold the template again,
        # connections disallowed or not.
        self._on_each_node(sql.SQL("create database {} template {}").format(sql.Identifier(name),
                                                                            sql.Identifier(template)), template)
        return self.node_urls(name)[0]

    def drop(self, name: str) -> None:
        # FORCE ends client sessions, not Citus's maintenance daemon, which may connect again.
        self._on_each_node(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)), name)

    def _on_each_node(self, statement: sql.Composed, held: str) -> None:
        """Run a CREATE or DROP DATABASE on every node; when a session holds the database `held`
        (ObjectInUse), end the sessions on it and try again, five times at most."""
        for url in self.node_urls("postgres"):
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("set citus.enable_create_database_propagation = off")
                for attempt in range(5):
                    try:
                        admin.execute(statement)
                        break
                    except psycopg.errors.ObjectInUse:
                        if attempt == 4:
                            raise
                        admin.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                                      "where datname = %s and pid <> pg_backend_pid()", (held,))


def citus_servers(server_url: str) -> CitusServers | None:
    """The cluster behind `server_url` when it is a Citus coordinator with workers (as made by
    `./dev cluster up`: the extension in its `postgres` database), else None."""
    with psycopg.connect(make_conninfo(server_url, dbname="postgres"), autocommit=True) as admin:
        row = admin.execute("select to_regclass('pg_catalog.pg_dist_node') is not null").fetchone()
        if not row or not row[0]:
            return None
        workers: list[tuple[str, int]] = [
            (str(host), int(port)) for host, port in admin.execute(
                "select nodename, nodeport from pg_dist_node where groupid <> 0 and noderole = 'primary' "
                "order by nodeid").fetchall()]
    return CitusServers(server_url, workers) if workers else None


