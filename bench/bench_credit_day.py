"""Benchmark: the consumer-credit daily job (`ledger-core credit run-day`) over many loans.

    .venv/bin/python bench/bench_credit_day.py [LOANS]      (default: 2000)

Uses a scratch database `bench_credit` (dropped and created again) on DATABASE_URL's server
(default: the local PostgreSQL). Setup, not timed: LOANS purchases on credit through
`ledger.products.credit.purchase_on_credit`, bought 40 days ago, so they fell due 10 days ago and
nobody paid. Timed: the job for each of those 10 days in order (every day charges a late fee on
every loan and moves its provision: two postings per loan a day), then the same 10 days again
(idempotent: posts nothing), then one day as the real daily run.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

import psycopg
from _common import machine, scratch_database, server_version

from ledger import calendar
from ledger.audit import verify
from ledger.products import chart, credit, credit_day
from ledger.products.onboarding import onboard_customer, onboard_merchant

database_name = "bench_credit"
customers_count = 100


def main() -> None:
    loans = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    url = scratch_database(database_name, fresh=True)
    print(f"server {server_version(url)}; {machine()}")
    with psycopg.connect(url, autocommit=True) as conn:
        chart.ensure_platform_accounts(conn)
        onboard_merchant(conn, "M1", "0.006")
        for c in range(customers_count):
            onboard_customer(conn, f"U{c}")
            credit.open_credit_line(conn, f"U{c}", 10**12)
        bought = calendar.day_start(calendar.today() - timedelta(days=40)) + timedelta(hours=10)
        start = time.perf_counter()
        for n in range(loans):
            credit.purchase_on_credit(conn, f"bench:{n}", f"U{n % customers_count}", "M1", 10000 + n, bought)
        print(f"setup: {loans:,} purchases in {time.perf_counter() - start:.1f} s")
        first = calendar.today() - timedelta(days=10)
        last = calendar.today() - timedelta(days=1)
        for label in ("first run of 10 days", "second run of the same days"):
            start = time.perf_counter()
            reports = credit_day.run_credit_days(conn, first, last, progress=None)
            elapsed = time.perf_counter() - start
            postings = sum(r.bills + r.late_fees + r.provisions + r.write_offs for r in reports)
            print(f"{label}: {elapsed:.1f} s ({elapsed / 10:.2f} s a day), {postings:,} postings")
        start = time.perf_counter()
        report = credit_day.run_credit_day(conn, calendar.today(), progress=None)
        print(f"today: {time.perf_counter() - start:.2f} s, {report}")
        print("verify:", "ok" if verify(conn, progress=None).ok else "BROKEN")


if __name__ == "__main__":
    main()
