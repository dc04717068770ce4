"""The schema: numbered migrations for what holds data, one definition file per object for code.

`sql/` (or `LEDGER_SQL_DIR`, or `directory=`) holds:

  NNNN_what.sql       migrations: tables, types, sequences, indexes, roles, grants on tables, and
                      data changes. Applied once each, in order, one transaction each, recorded
                      with their checksum in `ledger.schema_migrations`. An applied migration is
                      never edited (the runner refuses it): a change is a new migration.
  functions/NAME.sql  definitions: every function, procedure, aggregate, trigger function and
                      view, each in exactly one file, with its latest body (edited in place),
                      its SET options inline in the `create or replace`, its grants and revokes,
                      and the triggers that attach it to tables. A small family that belongs
                      together shares a file (chain.sql: entry_payload, chain_step, chain).
  migrations_before_split.txt
                      the checksums migrations had before the definitions left them (see below).
  schema.sql          what a fresh `migrate` produces, dumped by ledger/schema_dump.py; never
                      applied.

The rules:
  * A definition file can be applied any number of times: `create or replace` for functions,
    procedures, aggregates, views and triggers; a constraint trigger (which has no `or replace`)
    is `drop trigger if exists` and then created. A file that changes a signature (argument
    types; or a return type, argument names or view columns, which `or replace` cannot change)
    first drops the old one explicitly: `drop function if exists ledger.f(old, types);`.
  * A trigger lives with its trigger function. The append-only tables are listed in
    functions/append_only.sql: a migration that adds one adds it to that list. Creating a
    trigger locks its table briefly (dropping the constraint trigger, exclusively), so
    definitions with triggers are re-applied in a deployment like a migration.
  * A definition file that uses an object of another file says so in its first lines:
    `-- requires: chain, raise_error` (file names without .sql). Definitions are applied in that
    order (ties by name); an unknown name or a cycle is an error. tests/test_sql_layout.py checks
    that every reference is declared.
  * A definition is applied when its checksum differs from the one recorded for it in
    `ledger.schema_definitions`. Applying a migration forgets every recorded definition in the
    migration's own transaction, so after any migration every definition is applied again: what
    a migration had to drop (a view in the way of a column change) is made again, even if an
    earlier run stopped between the two.
  * Migrations never create, call or rely on a definition: on a fresh database every migration
    runs before the first definition, so no function exists and no trigger fires yet. A
    migration may drop one (to retire an object, delete its file and drop it in a migration).
  * Databases built before the split recorded the migrations' old checksums. For each version
    `migrations_before_split.txt` lists that old checksum; a record carrying it is accepted once
    and updated to the file's current checksum. The list never grows.
  * After changing either kind, regenerate sql/schema.sql (ledger/schema_dump.py says how) and
    review its diff: it is what the change does to the schema.

Safe to run twice and concurrently: an advisory lock serialises runners. Against a database
that takes no writes (a standby, or `default_transaction_read_only` on) nothing is written: with
nothing pending `migrate` returns an empty list, else it says why it cannot apply what is.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from ledger.distribution import admit_roles, distribute, is_distributed_cluster, prepare_session, statements, wanted

__all__ = [
    "Definition", "Migration", "MigrationError", "database_read_only", "definitions", "migrate", "migrations",
    "pending", "sql_dir",
]

_MIGRATION_LOCK_KEY = 7260000
_NAME_PATTERN = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")
_DEFINITION_NAME = re.compile(r"[a-z][a-z0-9_]*")
_REQUIRES = re.compile(r"^--\s*requires:(.*)$")
DEFINITIONS_DIR = "functions"
SCHEMA_DUMP = "schema.sql"
BEFORE_SPLIT = "migrations_before_split.txt"


class MigrationError(Exception):
    pass


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return _sha256(self.sql)


@dataclass(frozen=True)
class Definition:
    name: str
    sql: str
    requires: tuple[str, ...]

    @property
    def file_name(self) -> str:
        return f"{DEFINITIONS_DIR}/{self.name}.sql"

    @property
    def checksum(self) -> str:
        return _sha256(self.sql)


def sql_dir() -> Path:
    return Path(os.environ.get("LEDGER_SQL_DIR") or Path(__file__).resolve().parent.parent / "sql")


def migrations(directory: Path | None = None) -> list[Migration]:
    found = []
    for path in sorted((directory or sql_dir()).glob("*.sql")):
        if path.name == SCHEMA_DUMP:
            continue
        match = _NAME_PATTERN.fullmatch(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_what.sql")
        found.append(Migration(match.group(1), path.name, path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number: {sorted(versions)}")
    return found


def _requires(name: str, text: str) -> tuple[str, ...]:
    """The names on `-- requires:` lines among the file's leading comment lines."""
    names: list[str] = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("--"):
            break
        match = _REQUIRES.match(line)
        if match:
            names.extend(n.strip() for n in match.group(1).split(",") if n.strip())
    for required in names:
        if not _DEFINITION_NAME.fullmatch(required):
            raise MigrationError(f"{DEFINITIONS_DIR}/{name}.sql requires {required!r}, which is not a file name")
    return tuple(names)


def definitions(directory: Path | None = None) -> list[Definition]:
    """The definition files in the order they are applied: each after the files it requires."""
    found: dict[str, Definition] = {}
    for path in sorted(((directory or sql_dir()) / DEFINITIONS_DIR).glob("*.sql")):
        if not _DEFINITION_NAME.fullmatch(path.stem):
            raise MigrationError(f"{DEFINITIONS_DIR}/{path.name}: definition files are named what_they_define.sql")
        text = path.read_text(encoding="utf-8")
        found[path.stem] = Definition(path.stem, text, _requires(path.stem, text))
    return _ordered(found)


def _ordered(found: dict[str, Definition]) -> list[Definition]:
    for definition in found.values():
        for required in definition.requires:
            if required not in found:
                raise MigrationError(f"{definition.file_name} requires {required}, "
                                     f"but there is no {DEFINITIONS_DIR}/{required}.sql")
    waiting = {name: set(d.requires) for name, d in found.items()}
    ready = [name for name, needs in waiting.items() if not needs]
    heapq.heapify(ready)
    ordered: list[Definition] = []
    while ready:
        name = heapq.heappop(ready)
        ordered.append(found[name])
        del waiting[name]
        for other, needs in waiting.items():
            if name in needs:
                needs.discard(name)
                if not needs:
                    heapq.heappush(ready, other)
    if waiting:
        raise MigrationError("definition files require each other in a cycle: "
                             + ", ".join(f"{n} requires {', '.join(sorted(waiting[n]))}" for n in sorted(waiting)))
    return ordered


def _checksums_before_split(directory: Path) -> dict[str, str]:
    path = directory / BEFORE_SPLIT
    if not path.exists():
        return {}
    listed: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            version, checksum = line.split()[:2]
            listed[version] = checksum
    return listed


def migrate(conninfo: str, *, directory: Path | None = None) -> list[str]:
    """Apply every pending migration, then every definition not applied as it is now; returns
    the names applied (`NNNN_what.sql`, then `functions/name.sql`), empty when up to date."""
    directory = directory or sql_dir()
    pending_definitions = definitions(directory)  # a bad definition layout fails before any change
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if database_read_only(conn):
            _refuse_pending(conn, migrations(directory), pending_definitions)
            return []
        conn.execute("select pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        try:
            prepare_session(conn)
            _create_records(conn)
            applied = _apply_migrations(conn, migrations(directory), _checksums_before_split(directory))
            # On a Citus coordinator, tables not yet placed are placed before the definitions
            # attach triggers and functions to them, and the workers let the roles log in
            # (ledger/distribution.py); on one server this does nothing.
            applied += distribute(conn)
            applied += _apply_definitions(conn, pending_definitions)
            applied += admit_roles(conn)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
    return applied


def pending(conn: psycopg.Connection[Any], found_migrations: list[Migration],
            found_definitions: list[Definition]) -> list[str]:
    """What `migrate` would apply to this database now, applying nothing: migrations never
    recorded, then definitions whose recorded checksum is not the file's (a database never
    migrated has them all). For readiness checks: the code and the schema agree when empty."""
    if conn.execute("select to_regclass('ledger.schema_migrations') is null").fetchone() != (False,):
        return [m.name for m in found_migrations] + [d.file_name for d in found_definitions]
    done = {str(row[0]) for row in conn.execute("select version from ledger.schema_migrations")}
    recorded = {str(row[0]): str(row[1]) for row in conn.execute("select name, checksum from ledger.schema_definitions")}
    return ([m.name for m in found_migrations if m.version not in done]
            + [d.file_name for d in found_definitions if recorded.get(d.name) != d.checksum])


def database_read_only(conn: psycopg.Connection[Any]) -> bool:
    """Whether the database takes no writes: a standby, or read-only transactions by default."""
    row = conn.execute("select pg_is_in_recovery() or current_setting('transaction_read_only') = 'on'").fetchone()
    return bool(row and row[0])


def _refuse_pending(conn: psycopg.Connection[Any], found: list[Migration], ordered: list[Definition]) -> None:
    """On a read-only database: nothing to do when nothing is pending; else a MigrationError
    naming what would need writing."""
    names = pending(conn, found, ordered)
    if names:
        raise MigrationError(
            f"the database is read-only (a standby, or default_transaction_read_only is on) and "
            f"{len(names)} schema changes are pending ({', '.join(names[:5])}"
            f"{', ...' if len(names) > 5 else ''}); run `ledger-core migrate` against the primary")


def _create_records(conn: psycopg.Connection[Any]) -> None:
    conn.execute("create schema if not exists ledger")
    conn.execute(
        """create table if not exists ledger.schema_migrations (
               version text primary key,
               name text not null,
               checksum text not null,
               applied_at timestamptz not null default clock_timestamp())"""
    )
    conn.execute(
        """create table if not exists ledger.schema_definitions (
               name text primary key,
               checksum text not null,
               applied_at timestamptz not null default clock_timestamp())"""
    )


def _apply_migrations(conn: psycopg.Connection[Any], found: list[Migration],
                      before_split: dict[str, str]) -> list[str]:
    done: dict[str, tuple[str, str]] = {
        str(row[0]): (str(row[1]), str(row[2]))
        for row in conn.execute("select version, name, checksum from ledger.schema_migrations")
    }
    applied: list[str] = []
    # On a cluster a migration runs one statement at a time, as the definitions do: Citus sends a
    # DDL statement on a placed table on to the workers as its query text, and the text of a
    # multi-statement query is the whole migration, which they refuse.
    one_by_one = wanted(conn)
    for migration in found:
        if migration.version in done:
            name, checksum = done[migration.version]
            if checksum == migration.checksum:
                continue
            if checksum != before_split.get(migration.version):
                raise MigrationError(
                    f"{migration.name} was edited after it was applied (as {name}); "
                    "applied migrations are never edited: add a new one"
                )
            # Recorded before the definitions left the migrations: the same schema, a new text.
            with conn.transaction():
                conn.execute("update ledger.schema_migrations set name = %s, checksum = %s where version = %s",
                             (migration.name, migration.checksum, migration.version))
                conn.execute("delete from ledger.schema_definitions")
            continue
        with conn.transaction():
            for statement in statements(migration.sql) if one_by_one else [migration.sql]:
                conn.execute(statement.encode())
            conn.execute(
                "insert into ledger.schema_migrations (version, name, checksum) values (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            conn.execute("delete from ledger.schema_definitions")
        applied.append(migration.name)
    return applied


def _apply_definitions(conn: psycopg.Connection[Any], ordered: list[Definition]) -> list[str]:
    recorded = {str(row[0]): str(row[1]) for row in conn.execute("select name, checksum from ledger.schema_definitions")}
    applied: list[str] = []
    one_by_one = is_distributed_cluster(conn)
    for definition in ordered:
        if recorded.get(definition.name) == definition.checksum:
            continue
        with conn.transaction():
            for statement in statements(definition.sql) if one_by_one else [definition.sql]:
                conn.execute(statement.encode())
            conn.execute(
                """insert into ledger.schema_definitions (name, checksum) values (%s, %s)
                   on conflict (name) do update set checksum = excluded.checksum, applied_at = clock_timestamp()""",
                (definition.name, definition.checksum),
            )
        applied.append(definition.file_name)
    # A file deleted since (its object retired by a migration) leaves no record behind.
    conn.execute("delete from ledger.schema_definitions where name <> all(%s)", ([d.name for d in ordered],))
    return applied
