"""A load generator that costs little CPU, run in its own process by bench/bench_api.py.

Reads one JSON object on stdin (the scenario), drives the server with `clients` keep-alive
HTTP/1.1 connections on raw asyncio streams (uvloop when installed) for `warmup_s` and then
`duration_s` seconds, and prints one JSON object: requests and failures counted in the measured
window, latency percentiles, and the CPU seconds this process spent (so the report can say what
the client cost the shared machine).

Bodies are built from pre-encoded pieces: a request costs a few string joins, not a JSON encoder
over a nested dictionary; a response is checked by bytes, not decoded. With `persisted` the
client sends the document's sha256 instead of its text (graphql_api/persisted.py) and the text
once when the server does not know it yet, as Apollo's automatic persisted queries do.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sys
import time
import uuid
from typing import Any

POST = ("mutation Post($input: PostTransactionInput!) { postTransaction(input: $input) { __typename "
        "... on PostedTransaction { replayed transaction { id } } ... on LedgerError { code message } } }")
BALANCE = "query Balance($c: String!) { account(code: $c) { balance { posted { amount } available { amount } } } }"


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, headers: bytes, payload: bytes) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(headers + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        at = head.lower().find(b"content-length:")
        length = int(head[at + 15:head.index(b"\r\n", at)])
        return status, await reader.readexactly(length)

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()


def body_maker(spec: dict[str, Any], client: int) -> Any:
    """A function (rng, send_text) -> request body bytes for the scenario."""
    wallets, scenario = spec["wallets"], spec["scenario"]
    document = POST if scenario == "post" else BALANCE
    digest = hashlib.sha256(document.encode()).hexdigest()
    query_text = json.dumps(document)
    persisted = ('"extensions":{"persistedQuery":{"version":1,"sha256Hash":"%s"}}' % digest)
    prefix = f"{spec['run']}-{client}-"
    counter = iter(range(1 << 62))

    def make(rng: random.Random, send_text: bool) -> bytes:
        head = "{"
        if spec["persisted"]:
            head += persisted + ","
        if send_text or not spec["persisted"]:
            head += '"query":' + query_text + ","
        if scenario == "post":
            source = rng.randrange(wallets)
            target = rng.randrange(wallets - 1)
            target += target >= source  # another wallet
            variables = ('{"input":{"idempotencyKey":"%s%d","kind":"bench.transfer","entries":['
                         '{"accountCode":"liabilities:wallets:W%d","side":"DEBIT","amount":"1"},'
                         '{"accountCode":"liabilities:wallets:W%d","side":"CREDIT","amount":"1"}]}}'
                         % (prefix, next(counter), source, target))
        else:
            variables = '{"c":"liabilities:wallets:W%d"}' % rng.randrange(wallets)
        return (head + '"variables":' + variables + "}").encode()
    return make


def succeeded(scenario: str, status: int, body: bytes) -> bool:
    if status != 200 or b'"errors"' in body:
        return False
    return b'"PostedTransaction"' in body if scenario == "post" else b'"available"' in body


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    measure_from = started + spec["warmup_s"]
    measure_to = measure_from + spec["duration_s"]
    latencies: list[float] = []
    failures = 0
    first_failure: str | None = None
    tokens = spec["tokens"]

    async def one_client(n: int) -> None:
        nonlocal failures, first_failure
        rng = random.Random(f"{spec['run']}-{n}")
        make = body_maker(spec, n)
        connection = Connection(spec["host"], spec["port"])
        # Each connection cycles through its own tokens: the server's per-token rate limit is
        # meant for one caller, and the benchmark stands for many.
        mine = tokens[n::spec["clients"]] or tokens
        heads = [(b"POST /graphql HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: ") for token in mine]
        sent = 0
        send_text = False
        try:
            while (now := time.monotonic()) < measure_to:
                request_started = time.perf_counter()
                status, body = await connection.post(heads[sent % len(heads)], make(rng, send_text))
                sent += 1
                if spec["persisted"] and b"PERSISTED_QUERY_NOT_FOUND" in body:
                    status, body = await connection.post(heads[sent % len(heads)], make(rng, True))
                    sent += 1
                elapsed = time.perf_counter() - request_started
                if now >= measure_from:
                    latencies.append(elapsed)
                    if not succeeded(spec["scenario"], status, body):
                        failures += 1
                        first_failure = first_failure or f"{status} {body[:300]!r}"
        finally:
            connection.close()

    cpu_started = time.process_time()
    await asyncio.gather(*(one_client(n) for n in range(spec["clients"])))
    cpu_s = time.process_time() - cpu_started
    window_s = spec["duration_s"]
    latencies.sort()

    def percentile(p: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else float("nan")

    return {"requests": len(latencies), "failures": failures, "first_failure": first_failure,
            "per_s": len(latencies) / window_s, "p50_ms": percentile(0.5), "p99_ms": percentile(0.99),
            "client_cpu_s": cpu_s, "wall_s": time.monotonic() - started}


def main() -> None:
    spec = json.load(sys.stdin)
    spec.setdefault("run", uuid.uuid4().hex[:12])
    try:
        import uvloop
        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        print(json.dumps(runner.run(run(spec))))


if __name__ == "__main__":
    main()
