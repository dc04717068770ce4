"""Benchmark: a page of found transactions costs a page, however long the journal.

In the scratch database `bench_finding` (on DATABASE_URL's server, default the local one), posts
two-leg transfers in batches of 1,000 (kinds, accounts, metadata and effective times spread as in
tests/test_finding_indexes.py) up to a small and then a large journal, and at each size measures
p50 / p99 of a page of 50 for each filter of `ledger.transaction_search.find_transactions`, next
to an anchor measured in the same run (reading one transaction by id). It prints each filter's
p50 as a multiple of the anchor at both sizes: a filter whose cost follows the page keeps about
the same multiple as the journal grows. Then it posts batches with every index,
without entries_account_transaction_idx, and without the metadata GIN index too, to show what
they cost a posting. Statistics: the
server's own (ANALYZE is run once at each size, as autovacuum would).

    .venv/bin/python bench/bench_finding.py [--small 20000] [--large 200000]

Not run by the tests.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import latency_ms, machine, scratch_database, server_version

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.journal import get_transactions
from ledger.posting import Leg, Transfer, post
from ledger.progress import Progress
from ledger.transaction_search import TransactionFilter, find_transactions

WALLETS = 200
BATCH = 1_000
PAGE = 50
START = datetime(2020, 1, 1, tzinfo=UTC)


def _wallet(i: int) -> str:
    return f"liabilities:wallets:B{i}"


def _batch(first: int, count: int, run: str) -> list[Transfer]:
    return [Transfer(f"{run}{n}", "payment.rare" if n % 1000 == 0 else f"payment.kind{n % 8}",
                     [Leg("assets:bank", Side.DEBIT, 1 + n % 9),
                      Leg(_wallet(0) if n % 2 == 0 else _wallet(n % WALLETS), Side.CREDIT, 1 + n % 9)],
                     effective_at=START + timedelta(minutes=n), metadata={"order": f"o{n}", "shop": f"s{n % 50}"})
            for n in range(first, first + count)]


def _grow(url: str, have: int, target: int) -> int:
    progress = Progress(sys.stderr, target - have, f"posting up to {target:,} transactions")
    with psycopg.connect(url, autocommit=True) as conn:
        while have < target:
            post(conn, _batch(have, BATCH, "k"))
            have += BATCH
            progress.advance(BATCH)
        progress.finish()
        conn.execute("analyze")
    return have


def _measure(url: str, size: int) -> dict[str, float]:
    filters = {
        "kind, one in 8": TransactionFilter(kind="payment.kind3"),
        "kind, one in 1,000": TransactionFilter(kind="payment.rare"),
        "account, busy (half the journal)": TransactionFilter(account_code=_wallet(0)),
        "account, one in 400": TransactionFilter(account_code=_wallet(7)),
        "metadata, one in 50": TransactionFilter(metadata={"shop": "s7"}),
        "metadata, one row": TransactionFilter(metadata={"order": f"o{size // 2}"}),
        "effective, one day": TransactionFilter(effective_from=START + timedelta(minutes=size // 2),
                                                effective_to=START + timedelta(minutes=size // 2 + 1440)),
        "no filter, page from the middle": TransactionFilter(),
    }
    results: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        middle = size // 2
        results["anchor: one transaction by id"] = latency_ms(lambda: get_transactions(conn, [middle]), 300)[0]
        for name, wanted in filters.items():
            after = {"id": middle} if name.startswith("no filter") else None
            results[name] = latency_ms(lambda w=wanted, a=after: find_transactions(conn, w, after=a,
                                                                                     limit=PAGE + 1), 100)[0]
    return results


def _posting_rate(url: str, first: int, batches: int, run: str) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        start = time.perf_counter()
        for i in range(batches):
            post(conn, _batch(first + i * BATCH, BATCH, run))
        return batches * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=200_000)
    args = parser.parse_args()
    url = scratch_database("bench_finding", fresh=True)
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, NewAccount("assets:bank", "Bank", AccountType.ASSET, "CNY"))
        for i in range(WALLETS):
            create_account(conn, NewAccount(_wallet(i), f"B{i}", AccountType.LIABILITY, "CNY"))
    print(f"machine: {machine()}; PostgreSQL {server_version(url)}")
    have = _grow(url, 0, args.small)
    small = _measure(url, have)
    have = _grow(url, have, args.large)
    large = _measure(url, have)
    anchor = "anchor: one transaction by id"
    print(f"\npage of {PAGE}, p50 in ms and as a multiple of the anchor, at {args.small:,} and {args.large:,}")
    print(f"{'read':40} {'small ms':>9} {'x anchor':>9} {'large ms':>9} {'x anchor':>9}")
    for name in small:
        print(f"{name:40} {small[name]:9.2f} {small[name] / small[anchor]:9.1f} "
              f"{large[name]:9.2f} {large[name] / large[anchor]:9.1f}")
    first = have
    rates = {}
    for label, drop in [("all indexes", None), ("without entries_account_transaction_idx",
                                                "ledger.entries_account_transaction_idx"),
                        ("without that and transactions_metadata_idx", "ledger.transactions_metadata_idx")]:
        if drop is not None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"drop index {drop}")
        rates[label] = _posting_rate(url, first, 10, f"r{len(rates)}-")
        first += 10 * BATCH
    base = rates["all indexes"]
    for label, rate in rates.items():
        print(f"batches of {BATCH:,}, 1 client, {label}: {rate:,.0f}/s (all indexes / this: {base / rate:.2f})")

if __name__ == "__main__":
    main()
