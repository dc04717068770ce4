"""The GraphQL API against the plain double-entry insert, measured side by side in one run.

    .venv/bin/python -m bench.bench_api [--clients 16] [--duration 12] [--workers N]
        [--scenarios post,balance] [--persisted] [--profile DIR]

1. The anchor: a plain double-entry insert (a header row, two entry rows, two balance updates in
   one transaction, nothing else) by `--clients` clients over 1,000 accounts, in its own schema
   `bench_anchor` of the bench database: pgbench with its own script when `pgbench` is on the
   PATH, else the same statements from psycopg threads. Measured before and after the API
   scenarios; the ratios use the mean of the two, so both sides saw the same machine.
2. The real server, `ledger-core serve` (its default worker count unless `--workers`), driven by
   `--clients` keep-alive HTTP/1.1 connections from bench/_load.py in a separate process (raw
   asyncio streams; its own CPU is reported):
     post     `postTransaction`, two-leg transfers between random wallets of 1,000, unique keys
     balance  `account(code) { balance { posted available } }` on random wallets
3. Prints requests/s, p50/p99 latency, the ratio to the anchor, the CPU seconds the server and
   the load generator spent per request, and the targets (post >= 0.5x with p99 <= 50 ms,
   balance >= 0.8x).

The machine is shared, so only the ratios mean anything from one run to the next.

`--profile DIR` runs py-spy (the `bench` extra) on the server during each API scenario, sampling
the thread holding the GIL (where the server's Python CPU goes, not its waits), writes
DIR/<scenario>.txt (collapsed stacks) and prints the functions in the most samples.

Uses DATABASE_URL's server (a fresh database `ledger_bench_api` on it), else an embedded
PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import machine, server_version  # noqa: E402
from ledger.accounts import AccountType, NewAccount, Side, create_account  # noqa: E402
from ledger.migrate import migrate  # noqa: E402
from ledger.posting import Leg, Transfer, post  # noqa: E402
from ledger.tokens import create_token  # noqa: E402

DATABASE = "ledger_bench_api"
WALLETS = 1000
FUNDING_FEN = 10**12
BANK = "assets:bank:bench"
TOKENS = 128  # the server limits requests per token; the clients stand for many callers
TARGETS = {"post": 0.5, "balance": 0.8}
POST_P99_MAX_MS = 50.0

ANCHOR_SCHEMA = """
drop schema if exists bench_anchor cascade;
create schema bench_anchor;
create table bench_anchor.accounts (id int primary key, balance_fen bigint not null);
create table bench_anchor.transactions (id bigserial primary key, kind text not null,
                                        created_at timestamptz not null default now());
create table bench_anchor.entries (id bigserial primary key, transaction_id bigint not null,
                                   account_id int not null, amount_fen bigint not null);
insert into bench_anchor.accounts select g, 1000000000000 from generate_series(1, 1000) g;
"""
# The two accounts are updated in id order, so concurrent transfers never deadlock.
ANCHOR_SCRIPT = """\\set a random(1, 1000)
\\set b random(1, 1000)
\\set lo least(:a, :b)
\\set hi greatest(:a, :b)
BEGIN;
INSERT INTO bench_anchor.transactions (kind) VALUES ('transfer') RETURNING id AS tx \\gset
INSERT INTO bench_anchor.entries (transaction_id, account_id, amount_fen) VALUES (:tx, :lo, -1), (:tx, :hi, 1);
UPDATE bench_anchor.accounts SET balance_fen = balance_fen - 1 WHERE id = :lo;
UPDATE bench_anchor.accounts SET balance_fen = balance_fen + 1 WHERE id = :hi;
END;
"""


def database() -> tuple[str, Any]:
    url = os.environ.get("DATABASE_URL")
    keep: Any = None
    if not url:
        from ledger.database import start_embedded
        keep = tempfile.TemporaryDirectory(prefix="ledger-bench-api-")
        os.chmod(keep.name, 0o755)
        url = start_embedded(Path(keep.name) / "data", delete_on_exit=True)
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(DATABASE)))
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
    target = make_conninfo(url, dbname=DATABASE)
    migrate(target)
    return target, keep


def setup(url: str) -> list[str]:
    """1,000 funded wallets, the anchor's schema, and the tokens the clients use."""
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, NewAccount(BANK, "Bank", AccountType.ASSET, "CNY"))
        for w in range(WALLETS):
            create_account(conn, NewAccount(f"liabilities:wallets:W{w}", f"W{w}", AccountType.LIABILITY, "CNY",
                                            holder_id=f"W{w}", min_balance=0))
        for first in range(0, WALLETS, 100):
            post(conn, [Transfer(f"fund-{w}", "bench.fund", [Leg(BANK, Side.DEBIT, FUNDING_FEN),
                                                             Leg(f"liabilities:wallets:W{w}", Side.CREDIT, FUNDING_FEN)])
                        for w in range(first, first + 100)])
        conn.execute(ANCHOR_SCHEMA)
        tokens = [create_token(conn, "operator", note="bench").token for _ in range(TOKENS)]
        conn.execute("analyze")
    return tokens


def percentiles(latencies_ms: list[float]) -> tuple[float, float]:
    latencies_ms.sort()
    if not latencies_ms:
        return float("nan"), float("nan")
    return (latencies_ms[len(latencies_ms) // 2],
            latencies_ms[min(len(latencies_ms) - 1, int(len(latencies_ms) * 0.99))])


def anchor_pgbench(url: str, clients: int, duration_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-anchor-") as scratch:
        script = Path(scratch) / "transfer.sql"
        script.write_text(ANCHOR_SCRIPT)
        params = conninfo_to_dict(url)
        env = {**os.environ, "PGPASSWORD": str(params.get("password") or os.environ.get("PGPASSWORD", ""))}
        command = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(max(1, round(duration_s))),
                   "-f", str(script), "--log", f"--log-prefix={scratch}/log", url]
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise SystemExit(f"pgbench failed: {done.stderr.strip()[-500:]}")
        tps = float(re.search(r"tps = ([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
        latencies = [int(line.split()[2]) / 1000 for log in Path(scratch).glob("log*")
                     for line in log.read_text().splitlines() if line]
    p50, p99 = percentiles(latencies)
    return {"per_s": tps, "p50_ms": p50, "p99_ms": p99, "requests": len(latencies), "how": "pgbench"}


def anchor_psycopg(url: str, clients: int, duration_s: float) -> dict[str, Any]:
    """The same transaction as the pgbench script, from threads (when pgbench is missing)."""
    import random
    latencies: list[float] = []
    deadline = time.monotonic() + duration_s

    def client(n: int) -> None:
        rng = random.Random(n)
        with psycopg.connect(url) as conn:
            while time.monotonic() < deadline:
                a, b = sorted((rng.randint(1, 1000), rng.randint(1, 1000)))
                started = time.perf_counter()
                with conn.transaction():
                    tx = conn.execute("insert into bench_anchor.transactions (kind) values ('transfer') returning id",
                                      prepare=True).fetchone()[0]  # type: ignore[index]
                    conn.execute("insert into bench_anchor.entries (transaction_id, account_id, amount_fen) "
                                 "values (%s, %s, -1), (%s, %s, 1)", (tx, a, tx, b), prepare=True)
                    conn.execute("update bench_anchor.accounts set balance_fen = balance_fen - 1 where id = %s",
                                 (a,), prepare=True)
                    conn.execute("update bench_anchor.accounts set balance_fen = balance_fen + 1 where id = %s",
                                 (b,), prepare=True)
                latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    p50, p99 = percentiles(latencies)
    return {"per_s": len(latencies) / duration_s, "p50_ms": p50, "p99_ms": p99, "requests": len(latencies),
            "how": "psycopg threads"}


def anchor(url: str, clients: int, duration_s: float) -> dict[str, Any]:
    if shutil.which("pgbench"):
        return anchor_pgbench(url, clients, duration_s)
    return anchor_psycopg(url, clients, duration_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, workers: int | None) -> tuple[subprocess.Popen[bytes], int]:
    import httpx
    port = free_port()
    command = [sys.executable, "-m", "ledger_cli.main", "serve", "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    server = subprocess.Popen(command, env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server, port
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            break
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not come up")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (uvicorn's workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def cpu_s(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def drive(port: int, tokens: list[str], scenario: str, args: argparse.Namespace, server: subprocess.Popen[bytes],
          profile_dir: Path | None) -> dict[str, Any]:
    spec = {"host": "127.0.0.1", "port": port, "tokens": tokens, "clients": args.clients, "scenario": scenario,
            "wallets": WALLETS, "warmup_s": args.warmup, "duration_s": args.duration, "persisted": args.persisted}
    pids = process_tree(server.pid)
    cpu_before = cpu_s(pids)
    spy = None
    if profile_dir is not None:
        spy_bin = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        spy = subprocess.Popen([spy_bin, "record", "--pid", str(server.pid), "--subprocesses", "--rate", "200", "--gil",
                                "--duration", str(round(args.warmup + args.duration)), "--format", "raw", "--nonblocking",
                                "--output", str(profile_dir / f"{scenario}.txt")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    load = subprocess.run([sys.executable, str(ROOT / "bench" / "_load.py")], input=json.dumps(spec),
                          capture_output=True, text=True, check=False)
    cpu_after = cpu_s(pids)
    if load.returncode != 0:
        raise SystemExit(f"the load generator failed: {load.stderr[-1000:]}")
    result: dict[str, Any] = json.loads(load.stdout)
    # The server's CPU over the whole run (warm-up included) per request of the whole run.
    total_requests = result["requests"] * (time.monotonic() - started) / args.duration
    result["server_cpu_ms"] = 1000 * (cpu_after - cpu_before) / max(total_requests, 1)
    result["client_cpu_ms"] = 1000 * result["client_cpu_s"] / max(total_requests, 1)
    if spy is not None:
        spy.wait()
        print_profile(profile_dir / f"{scenario}.txt")  # type: ignore[operator]
    return result


def print_profile(path: Path, top: int = 25) -> None:
    """The functions in the most samples (inclusive), leaving out the trunk every request shares
    (frames in more than 80% of the samples), and the functions most often on top."""
    if not path.exists():
        print(f"  (no profile: py-spy wrote nothing to {path}; it needs ptrace permission)")
        return
    inclusive: Counter[str] = Counter()
    on_top: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        total += count
        names = [re.sub(r" \((.*?/)?(site-packages/)?([^/]+/[^/]+):\d+\)$", r" (\3)", frame)
                 for frame in stack.split(";")]
        for name in set(names):
            inclusive[name] += count
        on_top[names[-1]] += count
    if not total:
        return
    print(f"  profile {path}: {total} samples holding the GIL; inclusive share, trunk left out:")
    shown = [(name, count) for name, count in inclusive.most_common() if count <= 0.8 * total][:top]
    for name, count in shown:
        print(f"    {100 * count / total:5.1f}%  {name[:150]}")
    print("  most often on top:")
    for name, count in on_top.most_common(10):
        print(f"    {100 * count / total:5.1f}%  {name[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=12.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each API scenario's measure")
    parser.add_argument("--workers", type=int, default=None, help="server processes (default: serve's own default)")
    parser.add_argument("--scenarios", default="post,balance")
    parser.add_argument("--persisted", action="store_true",
                        help="send the documents' sha256 instead of their text (persisted queries)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR", help="py-spy the server into DIR")
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)

    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    url, keep = database()
    print(f"PostgreSQL {server_version(url)}; setting up {WALLETS} wallets ...", flush=True)
    tokens = setup(url)
    results: dict[str, dict[str, Any]] = {}
    anchors = [anchor(url, args.clients, args.duration / 2)]
    print(f"anchor ({anchors[0]['how']}, {args.clients} clients): {anchors[0]['per_s']:,.0f} transfers/s, "
          f"p50 {anchors[0]['p50_ms']:.1f} ms, p99 {anchors[0]['p99_ms']:.1f} ms", flush=True)
    server, port = start_server(url, args.workers)
    try:
        for scenario in scenarios:
            results[scenario] = drive(port, tokens, scenario, args, server, args.profile)
            r = results[scenario]
            print(f"{scenario}: {r['per_s']:,.0f}/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                  f"{r['failures']} failed; CPU per request: server {r['server_cpu_ms']:.2f} ms, "
                  f"load generator {r['client_cpu_ms']:.2f} ms", flush=True)
            if r["first_failure"]:
                print(f"  first failure: {r['first_failure']}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    anchors.append(anchor(url, args.clients, args.duration / 2))
    print(f"anchor again: {anchors[1]['per_s']:,.0f} transfers/s, p50 {anchors[1]['p50_ms']:.1f} ms, "
          f"p99 {anchors[1]['p99_ms']:.1f} ms", flush=True)
    anchor_per_s = statistics.mean(a["per_s"] for a in anchors)

    print(f"\nratios to the anchor ({anchor_per_s:,.0f} transfers/s, mean of the two runs), "
          f"server workers: {args.workers or 'serve default'}{', persisted queries' if args.persisted else ''}:")
    for scenario, r in results.items():
        ratio = r["per_s"] / anchor_per_s
        target = TARGETS.get(scenario)
        verdict = ""
        if target is not None:
            met = ratio >= target and (scenario != "post" or r["p99_ms"] <= POST_P99_MAX_MS)
            wanted = f">= {target}x" + (f", p99 <= {POST_P99_MAX_MS:.0f} ms" if scenario == "post" else "")
            verdict = f"  target {wanted}: {'met' if met else 'NOT met'}"
        print(f"  {scenario:8} {ratio:5.2f}x  ({r['per_s']:,.0f}/s, p99 {r['p99_ms']:.1f} ms){verdict}")
    if keep is not None:
        keep.cleanup()


if __name__ == "__main__":
    main()
