"""Benchmark: follow the journal feed from the start over 1,000,000 entries.

Builds (or reuses) a scratch database `bench_feed` on the PostgreSQL given by DATABASE_URL
(default: the local server at 127.0.0.1:5432), posting two-leg transfers through
ledger.posting.post in batches of 1,000 until the journal holds the target number of entries,
then follows `ledger.feed.journal_page` from the start, page by page, as a reconciliation script
would, and prints entries/s and the total time.

    .venv/bin/python bench/bench_journal_feed.py [--entries 1000000] [--page-size 500]

Not run by the tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.feed import journal_page
from ledger.migrate import MigrationError, migrate
from ledger.posting import Leg, Transfer, post

DATABASE = "bench_feed"
BATCH_SIZE = 1_000
WALLETS = 1_000
BANK = "assets:reserves:bench"


def _database(server: str, *, as_is: bool) -> str:
    url = make_conninfo(server, dbname=DATABASE)
    with psycopg.connect(make_conninfo(server, dbname="postgres"), autocommit=True) as admin:
        exists = admin.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone() is not None
        if exists and as_is:
            return url
        if not exists:
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
        try:
            migrate(url)
        except MigrationError as exc:
            print(f"{exc}: rebuilding {DATABASE}", file=sys.stderr)
            admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(DATABASE)))
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
            migrate(url)
    return url


def _build(conn: psycopg.Connection, entries_target: int) -> None:
    create_account(conn, NewAccount(BANK, "Bench reserve", AccountType.ASSET, "CNY"))
    for n in range(WALLETS):
        create_account(conn, NewAccount(f"liabilities:wallets:bench{n}", f"bench{n}", AccountType.LIABILITY, "CNY"))
    done = conn.execute("select count(*) from ledger.transactions where idempotency_key like 'bench-%'").fetchone()[0]
    entries = conn.execute("select count(*) from ledger.entries").fetchone()[0]
    started = time.monotonic()
    while entries < entries_target:
        batch = [Transfer(f"bench-{n}", "wallet.top_up",
                          [Leg(BANK, Side.DEBIT, 100 + n % 997), Leg(f"liabilities:wallets:bench{n % WALLETS}",
                                                                       Side.CREDIT, 100 + n % 997)])
                 for n in range(done, done + BATCH_SIZE)]
        post(conn, batch)
        done += BATCH_SIZE
        entries += 2 * BATCH_SIZE
        elapsed = time.monotonic() - started
        print(f"\rposting: {entries:,}/{entries_target:,} entries, {elapsed:,.0f} s", end="", file=sys.stderr)
    print(file=sys.stderr)


def _follow(conn: psycopg.Connection, page_size: int) -> None:
    total = conn.execute("select count(*) from ledger.entries").fetchone()[0]
    after, transactions, entries, latencies = None, 0, 0, []
    started = time.monotonic()
    while True:
        t0 = time.monotonic()
        page = journal_page(conn, after=after, first=page_size)
        latencies.append(time.monotonic() - t0)
        transactions += len(page.items)
        entries += sum(len(item.entries) for item in page.items)
        after = page.end_cursor
        if len(latencies) % 100 == 0:
            print(f"\rfollowing: {entries:,}/{total:,} entries", end="", file=sys.stderr)
        if not page.has_next_page:
            break
    elapsed = time.monotonic() - started
    print(file=sys.stderr)
    first_pages, last_pages = statistics.median(latencies[:20]), statistics.median(latencies[-20:])
    latencies.sort()
    print(f"followed {transactions:,} transactions, {entries:,} entries in {len(latencies):,} pages of {page_size}")
    print(f"total {elapsed:.1f} s, {entries / elapsed:,.0f} entries/s, {transactions / elapsed:,.0f} transactions/s")
    print(f"page latency: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    print(f"median of the first 20 pages {first_pages * 1000:.1f} ms, of the last 20 {last_pages * 1000:.1f} ms "
          "(keyset pages: the last costs what the first does)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--as-is", action="store_true",
                        help="reuse an existing bench_feed without migrating it (only follow the journal)")
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url = _database(server, as_is=args.as_is)
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("show server_version").fetchone()[0]
        print(f"PostgreSQL {version}; {os.cpu_count()} CPUs; {platform.processor() or platform.machine()}")
        if not args.as_is:
            _build(conn, args.entries)
        conn.execute("vacuum analyze ledger.transactions")
        conn.execute("vacuum analyze ledger.entries")
        _follow(conn, args.page_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
