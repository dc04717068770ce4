"""What distributing by account costs and buys: the writes of a transfer on a Citus cluster
against the same writes on one PostgreSQL server, in the same run (docs/scale-out.md).

Run: `.venv/bin/python bench/bench_citus.py --cluster URL [--single URL] [--seconds 5]`
(URL of the cluster: the last line of `./dev cluster up`; single: default the local PostgreSQL).

A transfer here is what the layout makes it: in one database transaction, the two balance rows
locked one statement each in account id order (one shard at a time), both updated, and two
entries appended, in tables distributed and colocated by account as the ledger's are. Both
accounts on one shard is a one-shard transaction (Citus routes it to one worker, no 2PC); on
two workers it is a two-phase commit driven by the coordinator. Batches of 1,000 transfers are
one database transaction of set-based statements. The single-server figures use the same
tables, local. Every figure is printed with its ratio to the single-server figure of the run.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from _common import DEFAULT_SERVER, machine, server_version
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ledger.accounts import Side
from ledger.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
SCRATCH = "bench_citus"
ACCOUNTS = 1000
SETUP = """
drop schema if exists bench cascade;
create schema bench;
create table bench.balances (account_id bigint primary key, version bigint not null default 0,
                             balance bigint not null default 0);
create table bench.entries (account_id bigint not null, account_version bigint not null,
                            transaction_id bigint not null, amount bigint not null,
                            recorded_at timestamptz not null default clock_timestamp(),
                            primary key (account_id, account_version));
"""


def _scratch(server: str, citus: bool) -> str:
    """A fresh scratch database; on the cluster made on every node with the workers registered."""
    if citus:
        from citus_databases import citus_servers  # the suite's helper: one database on every node

        servers = citus_servers(server)
        if servers is None:
            raise SystemExit(f"{server} is not a Citus coordinator with workers (./dev cluster up)")
        servers.drop(SCRATCH)
        url = servers.create_empty(SCRATCH)
    else:
        with psycopg.connect(make_conninfo(server, dbname="postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(SCRATCH)))
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(SCRATCH)))
        url = make_conninfo(server, dbname=SCRATCH)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SETUP)
        if citus:
            conn.execute("select create_distributed_table('bench.balances', 'account_id')")
            conn.execute("select create_distributed_table('bench.entries', 'account_id', "
                         "colocate_with => 'bench.balances')")
        conn.execute("insert into bench.balances (account_id, balance) "
                     "select g, 1000000000 from generate_series(1, %s) g", (ACCOUNTS,))
    return url


def _pairs(url: str, citus: bool) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Account pairs on one shard, and pairs on two different workers (on one server: any)."""
    if not citus:
        same = [(a, a + 1) for a in range(1, ACCOUNTS, 2)]
        return same, same
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """select a, get_shard_id_for_distribution_column('bench.balances', a),
                      (select p.groupid from pg_dist_placement p
                        where p.shardid = get_shard_id_for_distribution_column('bench.balances', a))
                 from generate_series(1, %s) a""", (ACCOUNTS,)).fetchall()
    by_shard: dict[int, list[int]] = {}
    by_group: dict[int, list[int]] = {}
    for account, shard, group in rows:
        by_shard.setdefault(shard, []).append(account)
        by_group.setdefault(group, []).append(account)
    same = [(ids[i], ids[i + 1]) for ids in by_shard.values() for i in range(0, len(ids) - 1, 2)]
    groups = sorted(by_group)
    cross = list(zip(by_group[groups[0]], by_group[groups[1]], strict=False))
    return same, cross


_txn = iter(range(1, 10**12))
_txn_lock = threading.Lock()


def _next_txn() -> int:
    with _txn_lock:
        return next(_txn)


def transfer(conn: psycopg.Connection[Any], a: int, b: int, amount: int) -> None:
    """One transfer: lock in id order, one shard per statement; update; append two entries."""
    low, high = sorted((a, b))
    txn = _next_txn()
    with conn.transaction():
        for account in (low, high):
            conn.execute("select version from bench.balances where account_id = %s for update", (account,))
        for account, delta in ((a, -amount), (b, amount)):
            row = conn.execute("update bench.balances set version = version + 1, balance = balance + %s "
                               "where account_id = %s returning version", (delta, account)).fetchone()
            assert row is not None
            conn.execute("insert into bench.entries (account_id, account_version, transaction_id, amount) "
                         "values (%s, %s, %s, %s)", (account, row[0], txn, abs(delta)))


def batch(conn: psycopg.Connection[Any], pairs: list[tuple[int, int]]) -> None:
    """1,000 transfers in one database transaction, set-based: balances locked and updated per
    account, entries appended in one statement."""
    txn = _next_txn()
    debits: dict[int, int] = {}
    for a, b in pairs:
        debits[a] = debits.get(a, 0) - 1
        debits[b] = debits.get(b, 0) + 1
    accounts = sorted(debits)
    with conn.transaction():
        conn.execute(
            """with moved as (
                   update bench.balances b set version = b.version + 1, balance = b.balance + d.delta
                     from unnest(%s::bigint[], %s::bigint[]) d(account_id, delta)
                    where b.account_id = d.account_id
                returning b.account_id, b.version)
               insert into bench.entries (account_id, account_version, transaction_id, amount)
               select account_id, version, %s, 1 from moved""",
            (accounts, [debits[a] for a in accounts], txn))


# The posting engine itself (ledger.posting.post) on the ledger's own migrated tables.
WALLETS = 200


def _engine_database(server: str, citus: bool) -> str:
    from ledger.accounts import AccountType, NewAccount, create_account
    from ledger.migrate import migrate
    from ledger.posting import Leg, Transfer, post

    name = "bench_citus_engine"
    if citus:
        from citus_databases import citus_servers
        servers = citus_servers(server)
        assert servers is not None
        servers.drop(name)
        url = servers.create_empty(name)
    else:
        with psycopg.connect(make_conninfo(server, dbname="postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        url = make_conninfo(server, dbname=name)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        create_account(conn, NewAccount("equity:capital", "Capital", AccountType.EQUITY, "CNY"))
        for n in range(WALLETS):
            create_account(conn, NewAccount(f"liabilities:wallet:W{n}", f"W{n}", AccountType.LIABILITY, "CNY"))
        post(conn, [Transfer(f"fund-{n}", "bench.fund", [
            Leg("equity:capital", Side.DEBIT, 10**12), Leg(f"liabilities:wallet:W{n}", Side.CREDIT, 10**12)])
            for n in range(WALLETS)])
    return url


def _engine_pairs(url: str, citus: bool) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Wallet code pairs on one shard and on two workers (one server: any pairs)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("select id, code from ledger.accounts where code like 'liabilities:wallet:%' "
                            "order by id").fetchall()
        if not citus:
            codes = [str(r[1]) for r in rows]
            same = [(codes[i], codes[i + 1]) for i in range(0, len(codes) - 1, 2)]
            return same, same
        placed = conn.execute(
            """select a.id, s.shardid, p.groupid
                 from ledger.accounts a
                 cross join lateral (select get_shard_id_for_distribution_column('ledger.balances', a.id) as shardid) s
                 join pg_dist_placement p on p.shardid = s.shardid
                where a.code like 'liabilities:wallet:%%'""").fetchall()
    code = {int(r[0]): str(r[1]) for r in rows}
    by_shard: dict[int, list[str]] = {}
    by_group: dict[int, list[str]] = {}
    for account_id, shard, group in placed:
        by_shard.setdefault(shard, []).append(code[account_id])
        by_group.setdefault(group, []).append(code[account_id])
    same = [(c[i], c[i + 1]) for c in by_shard.values() for i in range(0, len(c) - 1, 2)]
    groups = sorted(by_group)
    return same, list(zip(by_group[groups[0]], by_group[groups[1]], strict=False))


_keys = iter(range(10**12))


def engine_transfer(conn: psycopg.Connection[Any], pairs: list[tuple[str, str]], n: int) -> None:
    from ledger.posting import Leg, Transfer, post
    a, b = pairs[n % len(pairs)]
    post(conn, [Transfer(f"t{next(_keys)}", "bench.transfer", [Leg(a, Side.DEBIT, 1), Leg(b, Side.CREDIT, 1)])])


def engine_batch(conn: psycopg.Connection[Any], pairs: list[tuple[str, str]], n: int) -> None:
    from ledger.posting import Leg, Transfer, post
    requests = []
    for i in range(1000):
        a, b = pairs[(n * 7 + i) % len(pairs)]
        requests.append(Transfer(f"b{next(_keys)}", "bench.transfer", [Leg(a, Side.DEBIT, 1), Leg(b, Side.CREDIT, 1)]))
    post(conn, requests)


def rate(url: str, clients: int, seconds: float, work: Any, per_call: int) -> float:
    """Transfers per second with `clients` connections calling `work(conn, n)` until time is up."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def run(slot: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            n = 0
            while time.monotonic() < stop:
                work(conn, slot * 100000 + n)
                n += 1
                done[slot] += per_call

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster", required=True, help="the coordinator's URL (./dev cluster up)")
    parser.add_argument("--single", default=DEFAULT_SERVER, help="a single PostgreSQL server")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--engine", action="store_true",
                        help="measure ledger.posting.post on the ledger's tables instead of the bare writes")
    args = parser.parse_args()
    if args.engine:
        engine_main(args)
        return

    single_url = _scratch(args.single, citus=False)
    cluster_url = _scratch(args.cluster, citus=True)
    single_pairs, _ = _pairs(single_url, citus=False)
    same_pairs, cross_pairs = _pairs(cluster_url, citus=True)

    def singles(pairs: list[tuple[int, int]]) -> Any:
        return lambda conn, n: transfer(conn, *pairs[n % len(pairs)], 1)

    def batches(pairs: list[tuple[int, int]]) -> Any:
        return lambda conn, n: batch(conn, [pairs[(n * 7 + i) % len(pairs)] for i in range(1000)])

    figures = [
        ("single transfers, 1 client", 1, singles, 1),
        ("single transfers, 4 clients", 4, singles, 1),
        ("batches of 1,000 transfers, 1 client", 1, batches, 1000),
    ]
    print(f"machine: {machine()}; single server {server_version(single_url)}, "
          f"cluster {server_version(cluster_url)} (coordinator + 2 workers on the same cores)")
    rows: list[tuple[str, float, float, float]] = []
    progress = Progress(sys.stderr, len(figures) * 3 + 3, "bench_citus")
    if True:
        for name, clients, make, per_call in figures:
            anchor = rate(single_url, clients, args.seconds, make(single_pairs), per_call)
            progress.advance()
            same = rate(cluster_url, clients, args.seconds, make(same_pairs), per_call)
            progress.advance()
            cross = rate(cluster_url, clients, args.seconds, make(cross_pairs), per_call)
            progress.advance()
            rows.append((name, anchor, same, cross))
        drive = []
        for clients in (1, 4, 16):
            drive.append((clients, rate(cluster_url, clients, args.seconds, singles(cross_pairs), 1)))
            progress.advance()
    progress.finish()
    print("| figure | one server | cluster, one shard | ratio | cluster, across shards | ratio |")
    print("|---|---|---|---|---|---|")
    for name, anchor, same, cross in rows:
        print(f"| {name} | {anchor:,.0f}/s | {same:,.0f}/s | {same / anchor:.2f} | {cross:,.0f}/s | {cross / anchor:.2f} |")
    anchor_single = rows[0][1]
    print("\ncross-shard transfers the coordinator drives (2PC each):")
    for clients, value in drive:
        print(f"  {clients:>2} clients: {value:,.0f}/s ({value / anchor_single:.2f} x one server, 1 client)")


def engine_main(args: argparse.Namespace) -> None:
    single_url = _engine_database(args.single, citus=False)
    cluster_url = _engine_database(args.cluster, citus=True)
    single_pairs, _ = _engine_pairs(single_url, citus=False)
    same_pairs, cross_pairs = _engine_pairs(cluster_url, citus=True)
    figures = [("engine: single transfers, 1 client", 1, engine_transfer, 1),
               ("engine: single transfers, 4 clients", 4, engine_transfer, 1),
               ("engine: batches of 1,000 transfers, 1 client", 1, engine_batch, 1000)]
    progress = Progress(sys.stderr, len(figures) * 3, "bench_citus --engine")
    print(f"machine: {machine()}; single server {server_version(single_url)}, cluster {server_version(cluster_url)}")
    print("| figure | one server | cluster, one shard | ratio | cluster, across shards | ratio |")
    print("|---|---|---|---|---|---|")
    for name, clients, work, per_call in figures:
        found = []
        for url, pairs in ((single_url, single_pairs), (cluster_url, same_pairs), (cluster_url, cross_pairs)):
            found.append(rate(url, clients, args.seconds, lambda conn, n, p=pairs, w=work: w(conn, p, n), per_call))
            progress.advance()
        anchor, same, cross = found
        print(f"| {name} | {anchor:,.0f}/s | {same:,.0f}/s | {same / anchor:.2f} | {cross:,.0f}/s | {cross / anchor:.2f} |")
    progress.finish()


if __name__ == "__main__":
    main()
