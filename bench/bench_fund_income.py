"""Benchmark: one fund income pass (publishFundIncome's library call) over many holders.

    .venv/bin/python bench/bench_fund_income.py [HOLDERS ...]      (default: 100000 1000000)

Uses a scratch database `bench_fund` (dropped and created again) on the server given by
DATABASE_URL (default: the local PostgreSQL at 127.0.0.1:5432). For each size it creates a fund
and its holders set-based (accounts with one INSERT ... SELECT per batch; initial subscriptions
paid by bank as multi-leg transactions through ledger.posting.post), then times
`publish_income` for yesterday (Asia/Shanghai) and prints the numbers.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ledger import calendar
from ledger.accounts import AccountType, Side
from ledger.migrate import migrate
from ledger.posting import Leg, Transfer, legs_per_transaction_max, post
from ledger.products import chart, fund, fund_income
from ledger.progress import Progress

database_name = "bench_fund"
accounts_per_insert = 100_000
income_per_10k = Decimal("1.7807")
_CLEARING = chart.bank_clearing("BENCH")
# Every seed transaction: debit clearing, credit subscriptions owed, debit fund units (3 legs).
_seed_holders_per_transaction = legs_per_transaction_max - 3


def _server_url() -> str:
    return os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _fresh_database() -> str:
    with psycopg.connect(make_conninfo(_server_url(), dbname="postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database_name)))
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(database_name)))
    url = make_conninfo(_server_url(), dbname=database_name)
    migrate(url)
    return url


def _create_holder_accounts(conn: psycopg.Connection[Any], fund_id: str, holders: int) -> None:
    progress = Progress(sys.stderr, holders, f"{fund_id}: holder accounts")
    for start in range(0, holders, accounts_per_insert):
        count = min(accounts_per_insert, holders - start)
        conn.execute(
            """insert into ledger.accounts (code, name, type, normal_side, currency, holder_id, min_balance)
               select %(prefix)s || ':C' || n, 'Fund units of C' || n, 'liability', 'credit', 'CNY', 'C' || n, 0
                 from generate_series(%(first)s::bigint, %(last)s::bigint) n""",
            {"prefix": fund.holdings_prefix(fund_id), "first": start, "last": start + count - 1})
        progress.advance(count)
    progress.finish()


def _seed_subscriptions(conn: psycopg.Connection[Any], fund_id: str, holders: int, at: datetime) -> None:
    """Initial subscriptions paid by bank, 97 holders per transaction, 100 transactions per call."""
    progress = Progress(sys.stderr, holders, f"{fund_id}: initial subscriptions")
    requests: list[Transfer] = []
    for start in range(0, holders, _seed_holders_per_transaction):
        numbers = range(start, min(start + _seed_holders_per_transaction, holders))
        # Balances from 1,000 to about 10 million fen, so incomes vary and some floor to zero.
        amounts = [1_000 + (n * 7_919) % 10_000_000 for n in numbers]
        total = sum(amounts)
        legs = [Leg(_CLEARING, Side.DEBIT, total), Leg(fund.subscriptions_owed_account(fund_id), Side.CREDIT, total),
                Leg(fund.units_account(fund_id), Side.DEBIT, total)]
        legs.extend(Leg(fund.holding_account(fund_id, f"C{n}"), Side.CREDIT, a) for n, a in zip(numbers, amounts, strict=True))
        requests.append(Transfer(f"bench:{fund_id}:seed:{start}", "fund.subscribe", legs, effective_at=at,
                                 metadata={"fund_id": fund_id, "channel": "bank"}))
        if len(requests) == fund_income.transactions_per_call:
            post(conn, requests)
            progress.advance(sum(len(r.legs) - 3 for r in requests))
            requests = []
    if requests:
        post(conn, requests)
        progress.advance(sum(len(r.legs) - 3 for r in requests))
    progress.finish()


def run(url: str, holders: int, income_date: date) -> dict[str, float]:
    fund_id = f"BENCH{holders}"
    with psycopg.connect(url, autocommit=True) as conn:
        fund.create_fund(conn, fund_id, f"Benchmark fund, {holders:,} holders")
        chart.ensure(conn, _CLEARING, "Benchmark clearing", AccountType.ASSET)
        started = time.perf_counter()
        _create_holder_accounts(conn, fund_id, holders)
        accounts_s = time.perf_counter() - started
        started = time.perf_counter()
        seed_at = calendar.day_start(income_date) - timedelta(hours=1)
        _seed_subscriptions(conn, fund_id, holders, seed_at)
        seed_s = time.perf_counter() - started
        conn.execute("vacuum analyze")
        started = time.perf_counter()
        result = fund_income.publish_income(conn, fund_id, income_date, income_per_10k)
        publish_s = time.perf_counter() - started
        started = time.perf_counter()
        replay = fund_income.publish_income(conn, fund_id, income_date, income_per_10k)
        replay_s = time.perf_counter() - started
        assert replay.replayed and replay.income_fen == result.income_fen
    print(f"{holders:>9,} holders: accounts {accounts_s:7.1f} s, initial subscriptions {seed_s:7.1f} s, "
          f"publish_income {publish_s:6.1f} s ({result.holders / publish_s:,.0f} holders/s; "
          f"{result.holders:,} credited, {result.transactions:,} transactions, {result.income_fen:,} fen), "
          f"replay {replay_s:.3f} s", flush=True)
    return {"holders": holders, "publish_s": publish_s, "seed_s": seed_s, "accounts_s": accounts_s}


def main(argv: list[str]) -> int:
    sizes = [int(arg) for arg in argv] or [100_000, 1_000_000]
    url = _fresh_database()
    with psycopg.connect(url) as conn:
        version = conn.execute("show server_version").fetchone()
    print(f"PostgreSQL {version[0] if version else '?'}, database {database_name}, nproc {os.cpu_count()}, "
          f"{fund_income.holders_per_transaction_max} holders per transaction, "
          f"{fund_income.transactions_per_call} transactions per post() call", flush=True)
    income_date = calendar.today() - timedelta(days=1)
    for holders in sizes:
        run(url, holders, income_date)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
