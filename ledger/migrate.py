"""Forward-only migrations: `sql/NNNN_what.sql`, applied in order, one transaction each.

Each applied file is recorded in `ledger.schema_migrations` with a checksum; an applied file that
was edited since is refused rather than silently skipped. Safe to run twice and concurrently
(an advisory lock serialises runners).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

__all__ = ["Migration", "MigrationError", "migrations", "migrate", "sql_dir"]

_MIGRATION_LOCK_KEY = 7260000
_NAME_PATTERN = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def sql_dir() -> Path:
    return Path(os.environ.get("LEDGER_SQL_DIR") or Path(__file__).resolve().parent.parent / "sql")


def migrations(directory: Path | None = None) -> list[Migration]:
    found = []
    for path in sorted((directory or sql_dir()).glob("*.sql")):
        match = _NAME_PATTERN.fullmatch(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_what.sql")
        found.append(Migration(match.group(1), path.name, path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number: {sorted(versions)}")
    return found


def migrate(conninfo: str, *, directory: Path | None = None) -> list[str]:
    """Apply every pending migration; returns the names applied (empty when up to date)."""
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        try:
            conn.execute("create schema if not exists ledger")
            conn.execute(
                """create table if not exists ledger.schema_migrations (
                       version text primary key,
                       name text not null,
                       checksum text not null,
                       applied_at timestamptz not null default clock_timestamp())"""
            )
            done = {
                row[0]: (row[1], row[2])
                for row in conn.execute("select version, name, checksum from ledger.schema_migrations")
            }
            for migration in migrations(directory):
                if migration.version in done:
                    name, checksum = done[migration.version]
                    if checksum != migration.checksum:
                        raise MigrationError(
                            f"{migration.name} was edited after it was applied (as {name}); "
                            "applied migrations are never edited: add a new one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "insert into ledger.schema_migrations (version, name, checksum) values (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration.name)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
    return applied_now
