"""Posting engine throughput and read latency.

    .venv/bin/python bench/bench_core.py [--seconds 5] [--deep 1000000]

Runs against DATABASE_URL's server (default: the local PostgreSQL at 127.0.0.1:5432) in a
scratch database `bench_core`. Prints one line per figure. The 1,000,000-entry account is built
once and reused on later runs (pass --fresh to rebuild).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import latency_ms, machine, scratch_database, server_version
from psycopg_pool import ConnectionPool

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.balances import balance
from ledger.gather import Gatherer
from ledger.posting import Leg, Transfer, post
from ledger.statements import statement_page

ACCOUNTS = 1_000
FUNDING = 10**12
HOT = "liabilities:hot"
SOURCE = "equity:capital"


def setup(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("select count(*) from ledger.accounts where code like 'liabilities:wallets:%'").fetchone()[0]:
            return
        create_account(conn, NewAccount(SOURCE, "Capital", AccountType.EQUITY, "CNY"))
        create_account(conn, NewAccount(HOT, "Hot merchant", AccountType.LIABILITY, "CNY"))
        for size in ("1k", "1m"):
            create_account(conn, NewAccount(f"liabilities:deep:{size}", f"Deep {size}", AccountType.LIABILITY, "CNY"))
        for i in range(ACCOUNTS):
            create_account(conn, NewAccount(f"liabilities:wallets:B{i}", f"B{i}", AccountType.LIABILITY, "CNY", min_balance=0))
        post(conn, [Transfer(f"fund-{i}", "bench.fund", [Leg(SOURCE, Side.DEBIT, FUNDING),
                                                         Leg(f"liabilities:wallets:B{i}", Side.CREDIT, FUNDING)])
                    for i in range(ACCOUNTS)])


def _transfer(rng: random.Random, key: str, hot: bool) -> Transfer:
    source = f"liabilities:wallets:B{rng.randrange(ACCOUNTS)}"
    target = HOT if hot else f"liabilities:wallets:B{rng.randrange(ACCOUNTS)}"
    while target == source:
        target = f"liabilities:wallets:B{rng.randrange(ACCOUNTS)}"
    return Transfer(key, "bench.transfer", [Leg(source, Side.DEBIT, 7), Leg(target, Side.CREDIT, 7)])


def single_transfers(url: str, clients: int, seconds: float, hot: bool, run: str, gathered: bool) -> float:
    """Each client posts one two-leg transfer at a time, as fast as it can: on its own
    connection, or through a shared Gatherer (group commit) when `gathered`."""
    counts = [0] * clients
    stop = time.monotonic() + seconds
    barrier = threading.Barrier(clients)
    pool = ConnectionPool(url, min_size=2, max_size=2, kwargs={"autocommit": True}, open=True)
    gatherer = Gatherer(pool)

    def client(index: int) -> None:
        rng = random.Random(index)
        with psycopg.connect(url, autocommit=True) as conn:
            barrier.wait()
            while time.monotonic() < stop:
                request = _transfer(rng, f"{run}-{index}-{counts[index]}", hot)
                if gathered:
                    gatherer.submit(request)
                else:
                    post(conn, [request])
                counts[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    pool.close()
    return sum(counts) / elapsed


def batches(url: str, size: int, count: int, run: str, clients: int = 1) -> float:
    """`clients` connections each post `count` batches of `size` transfers, back to back. With
    two, one batch's parsing, checks and client work overlap the other's locked writes."""
    requests = [[[_transfer(random.Random(c * 7919 + b), f"{run}-{c}-{b}-{i}", False) for i in range(size)]
                 for b in range(count)] for c in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            barrier.wait()
            for batch in requests[index]:
                post(conn, batch)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.monotonic()
    for thread in threads:
        thread.join()
    return size * count * clients / (time.monotonic() - start)


def build_deep(url: str, code: str, entries: int) -> None:
    """Give `code` `entries` entries (one per transfer), effective one second apart."""
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("select b.version from ledger.balances b join ledger.accounts a on a.id = b.account_id "
                            "where a.code = %s", (code,)).fetchone()[0]
        start = datetime(2024, 1, 1, tzinfo=UTC)
        done = have
        while done < entries:
            size = min(1000, entries - done)
            post(conn, [Transfer(f"deep-{code}-{done + i}", "bench.deep", [Leg(SOURCE, Side.DEBIT, 3), Leg(code, Side.CREDIT, 3)],
                                 effective_at=start + timedelta(seconds=done + i)) for i in range(size)])
            done += size
            if sys.stderr.isatty():
                print(f"\rbuilding {code}: {done:,}/{entries:,}", end="", file=sys.stderr, flush=True)
        if sys.stderr.isatty() and entries > have:
            print(file=sys.stderr)


def reads(url: str, code: str, entries: int) -> dict[str, tuple[float, float]]:
    with psycopg.connect(url, autocommit=True) as conn:
        account_id = conn.execute("select id from ledger.accounts where code = %s", (code,)).fetchone()[0]
        start = datetime(2024, 1, 1, tzinfo=UTC)
        end = start + timedelta(seconds=entries + 1)
        first = statement_page(conn, account_id, "CNY", start, end, first=100)
        # A cursor deep in the period: the page ending just before the last 100 entries.
        deep_at = start + timedelta(seconds=entries - 200)
        deep_cursor = statement_page(conn, account_id, "CNY", deep_at, end, first=1).lines[0].cursor
        # The recorded time of the entry halfway through the account's history.
        half_known = conn.execute("select recorded_at from ledger.entries where account_id = %s and account_version = %s",
                                  (account_id, entries // 2)).fetchone()[0]
        return {
            "balance": latency_ms(lambda: balance(conn, account_id), 300),
            "balance as of (mid-history)": latency_ms(
                lambda: balance(conn, account_id, as_of=start + timedelta(seconds=entries - 100)), 100),
            "balance as known at the time half the entries were recorded": latency_ms(
                lambda: balance(conn, account_id, known_at=half_known), 100),
            "statement first page (100 lines)": latency_ms(
                lambda: statement_page(conn, account_id, "CNY", start, end, first=100, known_at=first.known_at), 50),
            "statement first page (100 lines), period starting 5,000 entries before the end": latency_ms(
                lambda: statement_page(conn, account_id, "CNY", start + timedelta(seconds=entries - 5_000), end,
                                       first=100), 50),
            "statement first page (100 lines), period starting halfway": latency_ms(
                lambda: statement_page(conn, account_id, "CNY", start + timedelta(seconds=entries // 2), end,
                                       first=100), 20),
            "statement deep page (100 lines)": latency_ms(
                lambda: statement_page(conn, account_id, "CNY", start, end, first=100, after=deep_cursor), 200),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--deep", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    url = scratch_database("bench_core", fresh=args.fresh)
    setup(url)
    run = f"r{int(time.time())}"
    print(f"machine: {machine()}; PostgreSQL {server_version(url)}")
    for gathered in (False, True):
        how = "gathered" if gathered else "direct"
        for clients in (1, 4, 16):
            rate = single_transfers(url, clients, args.seconds, False, f"{run}-{how}-u{clients}", gathered)
            print(f"single transfers, {how}, uniform, {clients:>2} clients: {rate:,.0f}/s")
        rate = single_transfers(url, 16, args.seconds, True, f"{run}-{how}-hot", gathered)
        print(f"single transfers, {how}, hot account, 16 clients: {rate:,.0f}/s")
    for clients in (1, 2):
        rate = batches(url, 1000, 20, f"{run}-b{clients}", clients)
        print(f"batches of 1,000, {clients} client{'s' if clients > 1 else ''}: {rate:,.0f} transfers/s")
    build_deep(url, "liabilities:deep:1k", 1_000)
    build_deep(url, "liabilities:deep:1m", args.deep)
    for code, entries in (("liabilities:deep:1k", 1_000), ("liabilities:deep:1m", args.deep)):
        for name, (p50, p99) in reads(url, code, entries).items():
            print(f"{name}, {entries:,} entries: p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
