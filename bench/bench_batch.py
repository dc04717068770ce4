"""Benchmark `postTransactions` in batches of 1,000 over HTTP against the engine's own batch rate,
both measured in this run on the same database and machine; prints the ratio (target >= 0.8x).

- anchor: `clients` threads in this process, each posting batches of `--size` two-leg transfers
  between random funded wallets with `ledger.posting.post` on its own connection;
- API: a real `ledger-core serve` process (`--workers`), `clients` threads each sending the same
  kind of batches as `postTransactions(input: {atomic: true, ...})` over keep-alive HTTP, asking
  for every transaction's id, as an importer would.

    .venv/bin/python bench/bench_batch.py [--size 1000] [--batches 10] [--clients 2] [--workers 2]

Uses DATABASE_URL's server (a fresh database `ledger_bench_batch` on it), else an embedded
PostgreSQL in a temporary directory. Record the numbers in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_graphql import database, machine, start_server

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.posting import Leg, Transfer, post
from ledger.progress import Progress
from ledger.tokens import create_token

WALLETS = 1000
FUNDING = 10**12
SELECTIONS = {
    # Every transaction's id, as an importer keeping the ledger's ids would ask.
    "ids": "postedCount results { ... on PostedTransaction { transaction { id } } }",
    # The counts only (a client that knows its transactions by their idempotency keys).
    "counts": "postedCount replayedCount refusedCount",
}
MUTATION = """mutation($input: PostTransactionsInput!) { postTransactions(input: $input) { __typename
  ... on TransactionsPosted { %s }
  ... on LedgerError { code message } } }"""


def setup(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, NewAccount("equity:capital", "Capital", AccountType.EQUITY, "CNY"))
        for w in range(WALLETS):
            create_account(conn, NewAccount(f"liabilities:wallets:W{w}", f"W{w}", AccountType.LIABILITY, "CNY",
                                            min_balance=0))
        post(conn, [Transfer(f"fund-{w}", "bench.fund", [Leg("equity:capital", Side.DEBIT, FUNDING),
                                                         Leg(f"liabilities:wallets:W{w}", Side.CREDIT, FUNDING)])
                    for w in range(WALLETS)])
        conn.execute("analyze")
        return create_token(conn, "operator").token


def transfers(seed: int, prefix: str, size: int) -> list[tuple[str, str, str]]:
    """(key, from, to) of `size` transfers between distinct random wallets."""
    rng = random.Random(seed)
    out = []
    for i in range(size):
        source, target = rng.sample(range(WALLETS), 2)
        out.append((f"{prefix}-{i}", f"liabilities:wallets:W{source}", f"liabilities:wallets:W{target}"))
    return out


def engine_requests(batch: list[tuple[str, str, str]]) -> list[Transfer]:
    return [Transfer(key, "bench.transfer", [Leg(a, Side.DEBIT, 7), Leg(b, Side.CREDIT, 7)]) for key, a, b in batch]


def api_body(batch: list[tuple[str, str, str]], select: str) -> bytes:
    return json.dumps({"query": MUTATION % SELECTIONS[select], "variables": {"input": {"atomic": True, "transactions": [
        {"idempotencyKey": key, "kind": "bench.transfer",
         "entries": [{"accountCode": a, "side": "DEBIT", "amount": "7"}, {"accountCode": b, "side": "CREDIT", "amount": "7"}]}
        for key, a, b in batch]}}}).encode()


def timed(clients: int, work: list[list[Any]], send: Callable[[int, Any], None], label: str) -> float:
    """Seconds for `clients` threads to each send their share of `work`, after a common start."""
    barrier = threading.Barrier(clients + 1)
    progress = Progress(sys.stderr, sum(len(w) for w in work), label)
    lock = threading.Lock()

    def client(index: int) -> None:
        barrier.wait()
        for item in work[index]:
            send(index, item)
            with lock:
                progress.advance()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    progress.finish()
    return elapsed


def run_engine(url: str, clients: int, batches: int, size: int, run: str) -> float:
    work = [[engine_requests(transfers(c * 1000 + b, f"{run}-e{c}-{b}", size)) for b in range(batches)]
            for c in range(clients)]
    connections = [psycopg.connect(url, autocommit=True) for _ in range(clients)]
    try:
        elapsed = timed(clients, work, lambda c, batch: post(connections[c], batch), "engine batches")
    finally:
        for conn in connections:
            conn.close()
    return clients * batches * size / elapsed


def run_api(base: str, token: str, clients: int, batches: int, size: int, run: str, select: str = "ids") -> float:
    work = [[api_body(transfers(c * 1000 + b, f"{run}-a{c}-{b}", size), select) for b in range(batches)]
            for c in range(clients)]
    sessions = [httpx.Client(base_url=base, timeout=60, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"}) for _ in range(clients)]

    def send(c: int, body: bytes) -> None:
        response = sessions[c].post("/graphql", content=body)
        answer = response.json()
        result = (answer.get("data") or {}).get("postTransactions") or {}
        if response.status_code != 200 or result.get("postedCount") != size:
            raise SystemExit(f"a batch failed: {response.status_code} {str(answer)[:300]}")

    try:
        elapsed = timed(clients, work, send, "API batches")
    finally:
        for session in sessions:
            session.close()
    return clients * batches * size / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1000, help="transactions per batch")
    parser.add_argument("--batches", type=int, default=10, help="batches per client and round")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--rounds", type=int, default=3, help="engine and API measured alternately, this many times")
    args = parser.parse_args()
    print(f"machine: {machine()}; {args.clients} clients, batches of {args.size:,}, server workers {args.workers}",
          flush=True)
    url, keep = database("ledger_bench_batch")
    token = setup(url)
    server, base = start_server(url, args.workers)
    try:
        run_api(base, token, args.clients, 1, args.size, "warm")  # the server's first requests, imports
        run_engine(url, args.clients, 1, args.size, "warm")
        engine_rates: list[float] = []
        api_rates: dict[str, list[float]] = {select: [] for select in SELECTIONS}
        for r in range(args.rounds):
            engine_rates.append(run_engine(url, args.clients, args.batches, args.size, f"r{r}"))
            line = f"round {r + 1}: engine {engine_rates[-1]:,.0f} transfers/s"
            for select, rates in api_rates.items():
                rates.append(run_api(base, token, args.clients, args.batches, args.size, f"r{r}{select}", select))
                line += f"; postTransactions ({select}) {rates[-1]:,.0f}/s ({rates[-1] / engine_rates[-1]:.2f}x)"
            print(line, flush=True)
        engine = statistics.median(engine_rates)
        print(f"median of {args.rounds} rounds: engine in process {engine:,.0f} transfers/s", flush=True)
        for select, rates in api_rates.items():
            api = statistics.median(rates)
            print(f"  postTransactions over HTTP, asking {select}: {api:,.0f} transfers/s, {api / engine:.2f}x "
                  "(target >= 0.80x)", flush=True)
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
