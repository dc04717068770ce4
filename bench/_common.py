"""Shared bits of the benchmark scripts: a scratch database, the machine, timing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ledger.migrate import migrate

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def scratch_database(name: str, *, fresh: bool) -> str:
    """A migrated database `name` on DATABASE_URL's server (default: the local PostgreSQL)."""
    server = os.environ.get("DATABASE_URL", DEFAULT_SERVER)
    with psycopg.connect(make_conninfo(server, dbname="postgres"), autocommit=True) as admin:
        exists = admin.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists and fresh:
            admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))
        if not exists or fresh:
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = make_conninfo(server, dbname=name)
    migrate(url)
    return url


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        return str(conn.execute("show server_version").fetchone()[0])  # type: ignore[index]


def latency_ms(action: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """p50 and p99 latency of `action` in milliseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]
