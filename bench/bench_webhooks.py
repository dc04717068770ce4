"""Benchmark: webhook delivery against the journal feed it follows.

In the scratch database `bench_webhooks` on DATABASE_URL's server (default: the local
PostgreSQL), posts N two-leg transfers, then in the same run:

- anchor: follows the journal feed over them, 100 transactions a page (what delivery reads);
- delivery: `deliver_pass` on a session set up as the worker's (`SESSION_OPTIONS`) until one
  endpoint on a local receiver (a real HTTP server in a thread, answering 204) has all N, then
  the same for two endpoints at once, then one endpoint again waiting for each commit's flush
  (`synchronous_commit = on`, what the worker does not do).

Prints events/s and each time as a ratio to the anchor, so runs on different machines compare.

    .venv/bin/python bench/bench_webhooks.py [--transactions 2000]

Not run by the tests.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _common import machine, scratch_database, server_version

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.feed import journal_page
from ledger.posting import Leg, Transfer, post
from ledger.progress import Progress
from ledger.webhooks.delivery import deliver_pass
from ledger.webhooks.endpoints import EndpointStatus, create_endpoint, set_status
from ledger.webhooks.settings import WebhookSettings
from ledger.webhooks.worker import SESSION_OPTIONS

SECRET = "bench-secret-0123456789"
BANK = "assets:reserves:bench"


class _Counter(BaseHTTPRequestHandler):
    received = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with _Counter.lock:
            _Counter.received += 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _book(conn: psycopg.Connection[Any], transactions: int) -> None:
    create_account(conn, NewAccount(BANK, "Bench reserve", AccountType.ASSET, "CNY"))
    for n in range(100):
        create_account(conn, NewAccount(f"liabilities:wallets:bench{n}", f"bench{n}", AccountType.LIABILITY, "CNY"))
    progress = Progress(sys.stderr, transactions, "posting")
    for start in range(0, transactions, 500):
        post(conn, [Transfer(f"bench-{n}", "wallet.top_up", [Leg(BANK, Side.DEBIT, 100 + n),
                                                               Leg(f"liabilities:wallets:bench{n % 100}",
                                                                   Side.CREDIT, 100 + n)])
                    for n in range(start, min(start + 500, transactions))])
        progress.advance(min(500, transactions - start))
    progress.finish()


def _follow(conn: psycopg.Connection[Any]) -> float:
    started, after = time.perf_counter(), None
    while True:
        page = journal_page(conn, after=after, first=100)
        after = page.end_cursor
        if not page.has_next_page:
            return time.perf_counter() - started


def _deliver(conn: psycopg.Connection[Any], expected: int, label: str) -> float:
    settings = WebhookSettings(allow_private_targets=True)
    progress = Progress(sys.stderr, expected, label)
    _Counter.received = 0
    started = time.perf_counter()
    while _Counter.received < expected:
        progress.advance(deliver_pass(conn, settings))
    elapsed = time.perf_counter() - started
    progress.finish()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=2_000)
    args = parser.parse_args()
    url = scratch_database("bench_webhooks", fresh=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{server.server_address[1]}/hook"
    print(f"PostgreSQL {server_version(url)}; {machine()}")
    with psycopg.connect(url, autocommit=True, options=SESSION_OPTIONS) as conn:  # as the worker's
        one = create_endpoint(conn, target, ["transaction.posted"], SECRET, created_by="bench",
                              allow_private_targets=True)
        set_status(conn, one.id, EndpointStatus.DISABLED)  # made before the postings, so they are its to send
        two = create_endpoint(conn, target, ["transaction.posted"], SECRET, created_by="bench",
                              allow_private_targets=True)
        set_status(conn, two.id, EndpointStatus.DISABLED)
        _book(conn, args.transactions)
        conn.execute("vacuum analyze ledger.transactions")
        conn.execute("vacuum analyze ledger.entries")
        count = conn.execute("select count(*) from ledger.transactions").fetchone()
        assert count is not None
        n = int(count[0])
        anchor = _follow(conn)
        set_status(conn, one.id, EndpointStatus.ACTIVE)
        single = _deliver(conn, n, "one endpoint")
        set_status(conn, one.id, EndpointStatus.DISABLED)
        conn.execute("update ledger.webhook_positions set after_xact = '0', after_transaction_id = 0")
        set_status(conn, one.id, EndpointStatus.ACTIVE)
        set_status(conn, two.id, EndpointStatus.ACTIVE)
        double = _deliver(conn, 2 * n, "two endpoints")
        set_status(conn, two.id, EndpointStatus.DISABLED)
        set_status(conn, one.id, EndpointStatus.DISABLED)
        conn.execute("update ledger.webhook_positions set after_xact = '0', after_transaction_id = 0")
        set_status(conn, one.id, EndpointStatus.ACTIVE)
        conn.execute("set synchronous_commit = on")
        flushed = _deliver(conn, n, "one endpoint, waiting for each commit's flush")
    server.shutdown()
    print(f"{n:,} transactions")
    print(f"anchor: follow the journal feed, 100 a page: {anchor:.2f} s ({n / anchor:,.0f} transactions/s)")
    print(f"deliver to one endpoint: {single:.2f} s ({n / single:,.0f} events/s), {single / anchor:.1f} x the anchor")
    print(f"deliver to two endpoints: {double:.2f} s ({2 * n / double:,.0f} events/s), "
          f"{double / anchor:.1f} x the anchor")
    print(f"deliver to one endpoint with synchronous_commit on: {flushed:.2f} s ({n / flushed:,.0f} events/s), "
          f"{flushed / anchor:.1f} x the anchor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
