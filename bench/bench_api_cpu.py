"""The API's CPU per request, in process: steadier than throughput on a shared machine.

    .venv/bin/python -m bench.bench_api_cpu [--rounds 3] [--requests 800] [--clients 16]
        [--scenarios post,balance]

The ASGI app (`create_app`, every middleware, the real pool) on a fresh database
`ledger_bench_api_cpu` (1,000 funded wallets, as bench/bench_api.py), called directly by
`--clients` concurrent callers with no sockets: `postTransaction` (two-leg transfers between
random wallets, unique keys) and `account(code) { balance { posted available } }`. For each
round it prints the process's CPU time (event loop and worker threads) per request, and at the
end the best round of each scenario: the least disturbed by whatever else the machine runs. The
JSON log lines go to /dev/null as `serve` would write them to stderr. A first round of 200
requests warms the caches and is not counted.

To compare two versions of the code, run it from each checkout in turn, alternating, several
times (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging.config
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import machine  # noqa: E402
from bench.bench_api import WALLETS, setup  # noqa: E402

DATABASE = "ledger_bench_api_cpu"
POST = ("mutation Post($input: PostTransactionInput!) { postTransaction(input: $input) { __typename "
        "... on PostedTransaction { replayed transaction { id } } ... on LedgerError { code message } } }")
BALANCE = "query Balance($c: String!) { account(code: $c) { balance { posted { amount } available { amount } } } }"


def body(scenario: str, rng: random.Random, key: str) -> bytes:
    if scenario == "post":
        source = rng.randrange(WALLETS)
        target = rng.randrange(WALLETS - 1)
        target += target >= source
        variables: dict[str, Any] = {"input": {"idempotencyKey": key, "kind": "bench.transfer", "entries": [
            {"accountCode": f"liabilities:wallets:W{source}", "side": "DEBIT", "amount": "1"},
            {"accountCode": f"liabilities:wallets:W{target}", "side": "CREDIT", "amount": "1"}]}}
        return json.dumps({"query": POST, "variables": variables}).encode()
    return json.dumps({"query": BALANCE, "variables": {"c": f"liabilities:wallets:W{rng.randrange(WALLETS)}"}}).encode()


async def call(app: Any, token: str, payload: bytes) -> None:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/graphql", "raw_path": b"/graphql", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                         (b"authorization", b"Bearer " + token.encode()),
                         (b"content-length", str(len(payload)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}
    messages = iter([{"type": "http.request", "body": payload, "more_body": False}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        found = next(messages, None)
        if found is None:  # the app asks again only to wait for a disconnect
            await asyncio.Event().wait()
        return found or {}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    answer = b"".join(m.get("body", b"") for m in sent[1:])
    if sent[0]["status"] != 200 or b'"errors"' in answer:
        raise SystemExit(f"a request failed: {sent[0]['status']} {answer[:300]!r}")


async def measure(url: str, tokens: list[str], args: argparse.Namespace) -> dict[str, list[float]]:
    from graphql_api.app import create_app
    from graphql_api.context import Limits

    # In process the callers can outrun the per-token rate limit; it is still checked, never hit.
    app = create_app(url, limits=Limits(requests_per_s_per_token=1_000_000, request_burst_per_token=1_000_000))
    keys = (f"{os.urandom(4).hex()}-{n}" for n in itertools.count())
    cpu_ms: dict[str, list[float]] = {scenario: [] for scenario in args.scenarios.split(",")}
    async with app.router.lifespan_context(app):
        for round_number in range(args.rounds + 1):
            for scenario in cpu_ms:
                count = args.requests if round_number else 200
                left = iter(range(count))

                async def caller(n: int, scenario: str = scenario, left: Any = left, seed: int = round_number) -> None:
                    rng = random.Random(f"{n}-{seed}")
                    for k in left:
                        await call(app, tokens[(n * 7 + k) % len(tokens)], body(scenario, rng, next(keys)))

                started = time.process_time()
                await asyncio.gather(*(caller(n) for n in range(args.clients)))
                per_request_ms = 1000 * (time.process_time() - started) / count
                if round_number:
                    cpu_ms[scenario].append(per_request_ms)
                    print(f"round {round_number} {scenario}: {per_request_ms:.3f} ms of CPU a request", flush=True)
    return cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=800, help="requests per round and scenario")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--scenarios", default="post,balance")
    args = parser.parse_args()
    from bench._common import scratch_database
    from graphql_api.logs import log_config

    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    url = scratch_database(DATABASE, fresh=True)
    tokens = setup(url)
    sys.stderr = open(os.devnull, "w")  # the log lines, for the life of the process
    logging.config.dictConfig(log_config())
    cpu_ms = asyncio.run(measure(url, tokens, args))
    for scenario, rounds in cpu_ms.items():
        print(f"{scenario}: best {min(rounds):.3f} ms of CPU a request (rounds: "
              f"{', '.join(f'{r:.3f}' for r in rounds)})")


if __name__ == "__main__":
    main()
