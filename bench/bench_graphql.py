"""Benchmark the GraphQL API as a client sees it: a real `ledger-core serve` process, N concurrent
httpx async clients for a bounded time per scenario; prints p50/p99 latency and requests/s.

Scenarios:
  balance     `account(code) { balance { ... } }` on random wallets
  post        `postTransaction` top-ups from 4 banks to random wallets (unique keys)
  statement   a statement page at the start, and deep (near the end), of one account with
              --statement-entries entries (1,000,000 for the figure in docs/benchmarks.md)

    .venv/bin/python bench/bench_graphql.py [--workers 2] [--clients 16] [--duration 10]
        [--statement-entries 1000000] [--scenarios balance,post,statement]

Uses DATABASE_URL's server (a fresh database `ledger_bench_graphql` on it, dropped first), else
an embedded PostgreSQL in a temporary directory. Record the numbers in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.cursor_keys import cursor_key
from ledger.migrate import migrate
from ledger.posting import Leg, Transfer, post
from ledger.statements import StatementCursor, statement_binding
from ledger.tokens import create_token

WALLETS = 1000
BANKS = 4
DEEP_ACCOUNT = "liabilities:wallets:DEEP"
BALANCE = "query($c: String!) { account(code: $c) { balance { posted { amount } available { amount } } } }"
POST = """mutation($input: PostTransactionInput!) { postTransaction(input: $input) {
  __typename ... on PostedTransaction { replayed transaction { id } } ... on LedgerError { code } } }"""
STATEMENT = """query($c: String!, $from: DateTime!, $to: DateTime!, $after: String) {
  statement(accountCode: $c, from: $from, to: $to, first: 100, after: $after) {
    entries { edges { node { runningBalance { amount } entry { id amount { amount } } } } pageInfo { endCursor } } } }"""


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


def database(name: str) -> tuple[str, Any]:
    url = os.environ.get("DATABASE_URL")
    keep: Any = None
    if not url:
        from ledger.database import start_embedded
        keep = tempfile.TemporaryDirectory(prefix="ledger-bench-")
        os.chmod(keep.name, 0o755)
        url = start_embedded(Path(keep.name) / "data", delete_on_exit=True)
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    target = make_conninfo(url, dbname=name)
    migrate(target)
    return target, keep


def setup(url: str, statement_entries: int) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        for b in range(BANKS):
            create_account(conn, NewAccount(f"assets:bank:b{b}", f"Bank {b}", AccountType.ASSET, "CNY"))
        for w in range(WALLETS):
            create_account(conn, NewAccount(f"liabilities:wallets:W{w}", f"W{w}", AccountType.LIABILITY, "CNY",
                                            holder_id=f"W{w}", min_balance=0))
        create_account(conn, NewAccount(DEEP_ACCOUNT, "Deep", AccountType.LIABILITY, "CNY"))
        # 99 credit legs per transaction (the most a transaction takes with its one debit), a
        # transaction a second: a million entries in a couple of minutes rather than ten.
        started, legs, per_call = time.monotonic(), 99, 100
        start_at = datetime(2025, 1, 1, tzinfo=UTC)
        transactions = -(-statement_entries // legs)
        for first in range(0, transactions, per_call):
            post(conn, [Transfer(f"deep-{t}", "bench.deep", [Leg("assets:bank:b0", Side.DEBIT, 100 * legs)]
                                 + [Leg(DEEP_ACCOUNT, Side.CREDIT, 100)] * legs, effective_at=start_at + timedelta(seconds=t))
                        for t in range(first, min(first + per_call, transactions))])
            if first and first % 1000 == 0:
                print(f"  {first * legs:,} entries in {DEEP_ACCOUNT} ({time.monotonic() - started:.0f} s)", flush=True)
        conn.execute("analyze")
        return create_token(conn, "operator").token


def start_server(url: str, workers: int) -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": url}
    server = subprocess.Popen([sys.executable, "-m", "ledger_cli.main", "serve", "--port", str(port), "--workers", str(workers)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not come up")


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: to see what the server does when
    the load generator itself costs little (httpx spends more CPU per request than the server's
    HTTP layer, and client and server share the machine)."""

    def __init__(self, base: str, token: str) -> None:
        self.host, port = base.removeprefix("http://").split(":")
        self.port = int(port)
        self.token = token
        self.streams: Any = None

    async def post(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        import json
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        payload = json.dumps(body).encode()
        writer.write(b"POST /graphql HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + self.token.encode() + b"\r\nContent-Length: "
                     + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:"))
        return int(lines[0].split()[1]), json.loads(await reader.readexactly(length))

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()


async def run_raw_clients(base: str, token: str, clients: int, duration_s: float, make_body: Any) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + duration_s

    async def one_client(n: int) -> None:
        nonlocal failures
        rng = random.Random(n)
        client = RawClient(base, token)
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                status, payload = await client.post(make_body(rng))
                latencies.append(time.perf_counter() - started)
                if status != 200 or payload.get("errors") or "code" in str(payload.get("data")):
                    failures += 1
        finally:
            await client.close()

    started = time.monotonic()
    await asyncio.gather(*(one_client(n) for n in range(clients)))
    return summary(latencies, failures, time.monotonic() - started)


def summary(latencies: list[float], failures: int, elapsed: float) -> dict[str, Any]:
    latencies.sort()
    return {"requests": len(latencies), "failures": failures, "rps": len(latencies) / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


async def run_clients(base: str, token: str, clients: int, duration_s: float, make_body: Any) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        deadline = time.monotonic() + duration_s

        async def one_client(n: int) -> None:
            nonlocal failures
            rng = random.Random(n)
            while time.monotonic() < deadline:
                body = make_body(rng)
                started = time.perf_counter()
                response = await client.post("/graphql", json=body)
                latencies.append(time.perf_counter() - started)
                payload = response.json()
                if response.status_code != 200 or payload.get("errors") or "code" in str(payload.get("data")):
                    failures += 1

        started = time.monotonic()
        await asyncio.gather(*(one_client(n) for n in range(clients)))
        elapsed = time.monotonic() - started
    return summary(latencies, failures, elapsed)


def balance_body(rng: random.Random) -> dict[str, Any]:
    return {"query": BALANCE, "variables": {"c": f"liabilities:wallets:W{rng.randrange(WALLETS)}"}}


def post_body(rng: random.Random) -> dict[str, Any]:
    return {"query": POST, "variables": {"input": {
        "idempotencyKey": uuid.uuid4().hex, "kind": "wallet.top_up", "entries": [
            {"accountCode": f"assets:bank:b{rng.randrange(BANKS)}", "side": "DEBIT", "amount": "100"},
            {"accountCode": f"liabilities:wallets:W{rng.randrange(WALLETS)}", "side": "CREDIT", "amount": "100"}]}}}


def deep_cursor(url: str) -> tuple[str, str, str]:
    """(from, to, cursor) for a page near the end of the deep account's statement."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            """select a.id, min(e.effective_at), max(e.effective_at), count(*), clock_timestamp()
                 from ledger.entries e join ledger.accounts a on a.id = e.account_id
                where a.code = %s group by a.id""", (DEEP_ACCOUNT,)).fetchone()
        account_id, first_at, last_at, count, now = row
        skip = max(count - 150, 0)
        entry = conn.execute(
            """select e.effective_at, e.id from ledger.entries e where e.account_id = %s
                order by e.effective_at, e.id offset %s limit 1""", (account_id, skip)).fetchone()
        key = cursor_key(conn)
    # Every deep entry is a credit of 100 on a credit-normal account: running balance = 100 x position.
    end_at = last_at + timedelta(seconds=1)
    cursor = StatementCursor(entry[0], entry[1], 100 * (skip + 1), now).encode(
        key=key, binding=statement_binding(account_id, first_at, end_at))
    return first_at.isoformat(), end_at.isoformat(), cursor


async def statement_pages(base: str, token: str, url: str, rounds: int) -> dict[str, float]:
    start, end, cursor = deep_cursor(url)
    timings: dict[str, list[float]] = {"first": [], "deep": []}
    async with httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(rounds):
            for name, after in (("first", None), ("deep", cursor)):
                body = {"query": STATEMENT, "variables": {"c": DEEP_ACCOUNT, "from": start, "to": end, "after": after}}
                started = time.perf_counter()
                response = await client.post("/graphql", json=body)
                timings[name].append(time.perf_counter() - started)
                payload = response.json()
                assert not payload.get("errors"), payload
                assert len(payload["data"]["statement"]["entries"]["edges"]) == 100
    return {name: 1000 * statistics.median(values) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--statement-entries", type=int, default=1_000_000)
    parser.add_argument("--scenarios", default="balance,post,statement")
    parser.add_argument("--client", choices=["httpx", "raw"], default="httpx",
                        help="httpx.AsyncClient (default) or a minimal keep-alive client that costs less CPU")
    args = parser.parse_args()
    scenarios = set(args.scenarios.split(","))
    print(f"machine: {machine()}; server workers: {args.workers}; clients: {args.clients} ({args.client})",
          flush=True)
    runner = run_clients if args.client == "httpx" else run_raw_clients
    url, keep = database("ledger_bench_graphql")
    token = setup(url, args.statement_entries if "statement" in scenarios else 0)
    server, base = start_server(url, args.workers)
    try:
        for name, body in (("balance", balance_body), ("post", post_body)):
            if name in scenarios:
                asyncio.run(runner(base, token, args.clients, 2.0, body))  # warm up
                result = asyncio.run(runner(base, token, args.clients, args.duration, body))
                print(f"{name:9} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.1f} ms  "
                      f"p99 {result['p99_ms']:6.1f} ms  ({result['requests']} requests, {result['failures']} failed)",
                      flush=True)
        if "statement" in scenarios and args.statement_entries >= 1000:
            pages = asyncio.run(statement_pages(base, token, url, rounds=20))
            print(f"statement page of 100 in a {args.statement_entries:,}-entry account: first {pages['first']:.1f} ms, "
                  f"deep {pages['deep']:.1f} ms (x{pages['deep'] / pages['first']:.2f})", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        if keep is not None:
            keep.cleanup()


if __name__ == "__main__":
    main()
