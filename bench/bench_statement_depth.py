"""A statement's first page wherever its period starts in a long account, before and after the
balance checkpoints are swept.

    .venv/bin/python bench/bench_statement_depth.py [--entries 1000000] [--fresh]

Runs against DATABASE_URL's server (default: the local PostgreSQL at 127.0.0.1:5432). Builds
one account of --entries entries through the engine's batch path (1,000 transfers a call,
effective one second apart; progress on a terminal) in the scratch database
`bench_statement_depth_base`, never swept and kept for later runs (--fresh rebuilds). Each run
measures a copy of it, `bench_statement_depth`, made afresh, so "before" is always before:

  before  no sweep yet: the first page (100 lines) of a statement whose period starts halfway
          through the account, and of one starting 1,000 entries before its end; the ratio;
  sweep   `sweep_all`, the job behind `ledger-core balance-checkpoints`: its rate;
  after   the same two pages and their ratio (target: halfway within 2x of near the end), and a
          balance as of the middle of the history;
  lag     the same pages with 5,000 entries recorded since the sweep, 1,000 of them backdated
          to the start of the history (what a reader adds), then the sweep that writes every
          checkpoint after them again, and the pages once more;
  verify  the time `verify` takes to recompute every checkpoint.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import latency_ms, machine, scratch_database, server_version

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.balance_checkpoints import every_entries_default, sweep_all, verify_balance_checkpoints
from ledger.balances import balance
from ledger.migrate import migrate
from ledger.posting import Leg, Transfer, post
from ledger.progress import Progress
from ledger.statements import statement_page

SOURCE = "equity:capital"
DEEP = "liabilities:deep"
START = datetime(2020, 1, 1, tzinfo=UTC)
BATCH = 1_000


def build(url: str, entries: int) -> int:
    """The deep account's id, after giving it `entries` entries (one per transfer)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("select 1 from ledger.accounts where code = %s", (DEEP,)).fetchone():
            create_account(conn, NewAccount(SOURCE, "Capital", AccountType.EQUITY, "CNY"))
            create_account(conn, NewAccount(DEEP, "Deep", AccountType.LIABILITY, "CNY"))
        account_id, have = conn.execute(
            "select a.id, b.version from ledger.accounts a join ledger.balances b on b.account_id = a.id "
            "where a.code = %s", (DEEP,)).fetchone()  # type: ignore[misc]
        progress = Progress(sys.stderr, entries, f"building {DEEP}")
        progress.advance(min(have, entries))
        started, done = time.monotonic(), have
        while done < entries:
            size = min(BATCH, entries - done)
            post(conn, [Transfer(f"deep-{done + i}", "bench.deep", [Leg(SOURCE, Side.DEBIT, 3 + (done + i) % 5),
                                                                   Leg(DEEP, Side.CREDIT, 3 + (done + i) % 5)],
                                 effective_at=START + timedelta(seconds=done + i)) for i in range(size)])
            done += size
            progress.advance(size)
        progress.finish()
        if done > have:
            rate = (done - have) / (time.monotonic() - started)
            print(f"built {done - have:,} entries of {DEEP} at {rate:,.0f} transfers/s (batches of {BATCH:,})")
        return int(account_id)


def copy_database(template_url: str, name: str) -> str:
    """A fresh copy of the database at `template_url`, called `name`, migrated."""
    template = conninfo_to_dict(template_url)["dbname"]
    with psycopg.connect(make_conninfo(template_url, dbname="postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        started = time.monotonic()
        admin.execute(sql.SQL("create database {} template {} strategy file_copy").format(
            sql.Identifier(name), sql.Identifier(str(template))))
        print(f"copied {template} to {name} in {time.monotonic() - started:.1f} s")
    url = make_conninfo(template_url, dbname=name)
    migrate(url)
    return url


def pages(conn: psycopg.Connection, account_id: int, entries: int, repeat: int) -> dict[str, tuple[float, float]]:
    end = START + timedelta(seconds=entries + 10)
    halfway = START + timedelta(seconds=entries // 2)
    near_end = START + timedelta(seconds=entries - 1_000)
    return {
        "halfway": latency_ms(lambda: statement_page(conn, account_id, "CNY", halfway, end, first=100), repeat),
        "near end": latency_ms(lambda: statement_page(conn, account_id, "CNY", near_end, end, first=100), repeat),
    }


def report(label: str, figures: dict[str, tuple[float, float]]) -> None:
    half, near = figures["halfway"], figures["near end"]
    print(f"{label}: first page, period starting halfway p50 {half[0]:.2f} ms p99 {half[1]:.2f} ms; "
          f"1,000 entries before the end p50 {near[0]:.2f} ms p99 {near[1]:.2f} ms; "
          f"halfway / near end (p50) {half[0] / near[0]:.2f}x")


def sweep(conn: psycopg.Connection, label: str) -> None:
    started = time.monotonic()
    swept = sweep_all(conn, every=every_entries_default)
    seconds = time.monotonic() - started
    print(f"{label}: {swept.accounts} accounts, {swept.entries:,} entries since their last sweep, "
          f"{swept.checkpoints:,} checkpoints written in {seconds:.2f} s "
          f"({swept.entries / max(seconds, 1e-9):,.0f} entries/s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    base_url = scratch_database("bench_statement_depth_base", fresh=args.fresh)
    print(f"machine: {machine()}; PostgreSQL {server_version(base_url)}")
    account_id = build(base_url, args.entries)
    url = copy_database(base_url, "bench_statement_depth")
    run = int(time.time())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze ledger.entries")
        middle = START + timedelta(seconds=args.entries // 2)
        as_of_before = latency_ms(lambda: balance(conn, account_id, as_of=middle, known_at=datetime.now(UTC)), 20)
        report("before", pages(conn, account_id, args.entries, args.repeat))
        sweep(conn, "sweep")
        report("after", pages(conn, account_id, args.entries, args.repeat))
        as_of_after = latency_ms(lambda: balance(conn, account_id, as_of=middle, known_at=datetime.now(UTC)), 20)
        print(f"balance as of the middle of the history: p50 {as_of_before[0]:.2f} ms before, "
              f"{as_of_after[0]:.2f} ms after")
        # 5,000 more entries, 1,000 of them backdated to the start of the history.
        for part in range(5):
            backdated = part == 0
            post(conn, [Transfer(f"lag-{run}-{part}-{i}", "bench.deep", [Leg(SOURCE, Side.DEBIT, 2), Leg(DEEP, Side.CREDIT, 2)],
                                 effective_at=(START - timedelta(days=1) + timedelta(seconds=i)) if backdated
                                 else START + timedelta(seconds=args.entries + part * 1_000 + i))
                        for i in range(1_000)])
        report("5,000 entries since the sweep, 1,000 backdated", pages(conn, account_id, args.entries, args.repeat))
        sweep(conn, "sweep after backdating")
        report("after that sweep", pages(conn, account_id, args.entries, args.repeat))
        started = time.monotonic()
        problems = verify_balance_checkpoints(conn)
        checkpoints = conn.execute("select count(*) from ledger.balance_checkpoints").fetchone()[0]  # type: ignore[index]
        print(f"verify recomputed {checkpoints:,} balance checkpoints in {time.monotonic() - started:.1f} s: "
              f"{'OK' if not problems else problems[0]}")


if __name__ == "__main__":
    main()
