"""Benchmark: accrueFactoringFees (its library call) over many open advances.

    .venv/bin/python bench/bench_factoring_accrual.py [ADVANCES]      (default: 100000)

Uses a scratch database `bench_factoring` (dropped and created again) on the server given by
DATABASE_URL (default: the local PostgreSQL at 127.0.0.1:5432). Setup is set-based and not
timed: suppliers' payables and every advance's two accounts with one INSERT ... SELECT each,
invoices and advances as rows, their payables and payouts posted through ledger.posting.post as
multi-leg transactions (99 invoices or advances per transaction, to keep setup short: the
accrual reads only the advance accounts' entries and balances). Every advance is made
yesterday, so today's run accrues day 1 for all of them. Then it times
`accrue_factoring_fees(today)`, which locks and computes batches of 10,000 advances and posts
their fees 99 advances to a transaction,
and a second run for the same date, which must post nothing.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
from _common import machine, scratch_database, server_version

from ledger import calendar
from ledger.accounts import Side
from ledger.posting import Leg, Transfer, legs_per_transaction_max, post
from ledger.products import chart
from ledger.products import factoring as f
from ledger.products import factoring_accrual as fa
from ledger.products.factoring.common import ensure_product_accounts
from ledger.progress import Progress

database_name = "bench_factoring"
suppliers_count = 1_000
advance_rate = Decimal("0.8")
daily_fee_rate = Decimal("0.00025")
_per_transaction = legs_per_transaction_max - 1
# The core notifies the accounts a post() call touched in one pg_notify (payload capped at 8000
# bytes): 6 transactions of 99 accounts each stay under it.
_transactions_per_post = 6


def _amount_fen(n: int) -> int:
    return 1_000_000 + (n * 7_919) % 99_000_000


def _seed_rows(conn: psycopg.Connection[Any], advances: int) -> None:
    today = calendar.today()
    ensure_product_accounts(conn)
    conn.execute(
        """insert into ledger.accounts (code, name, type, normal_side, currency, holder_id, min_balance)
           select 'liabilities:suppliers:BS' || s, 'Payable to BS' || s, 'liability', 'credit', 'CNY', 'BS' || s, 0
             from generate_series(0, %s - 1) s""", (suppliers_count,))
    conn.execute(
        """insert into ledger.purchase_invoices (supplier_id, invoice_no, amount_fen, issued_on, due_date)
           select 'BS' || (n %% %s), 'B' || n, 1000000 + (n * 7919) %% 99000000, %s, %s
             from generate_series(1, %s) n""",
        (suppliers_count, today - timedelta(days=2), today + timedelta(days=60), advances))
    conn.execute(
        """insert into ledger.accounts (code, name, type, normal_side, currency, holder_id, min_balance)
           select p || i.id, 'Bench advance ' || i.id, 'asset', 'debit', 'CNY', i.supplier_id, 0
             from ledger.purchase_invoices i, unnest(array['assets:factoring:advances:', 'assets:factoring:fees:']) p""")
    conn.execute(
        """insert into ledger.factoring_advances (id, invoice_id, supplier_id, base_fen, principal_fen, advance_rate,
               daily_fee_rate, advanced_on, principal_account_id, fee_account_id)
           select i.id, i.id, i.supplier_id, i.amount_fen, floor(i.amount_fen * %s), %s, %s, %s, pa.id, fa.id
             from ledger.purchase_invoices i
             join ledger.accounts pa on pa.code = 'assets:factoring:advances:' || i.id
             join ledger.accounts fa on fa.code = 'assets:factoring:fees:' || i.id""",
        (advance_rate, advance_rate, daily_fee_rate, today - timedelta(days=1)))
    conn.execute("select setval(pg_get_serial_sequence('ledger.factoring_advances', 'id'), %s)", (advances,))


def _seed_postings(conn: psycopg.Connection[Any], advances: int) -> None:
    yesterday = calendar.day_start(calendar.today() - timedelta(days=1))
    rows = conn.execute("""select a.id, a.supplier_id, i.amount_fen, a.principal_fen
                             from ledger.factoring_advances a join ledger.purchase_invoices i on i.id = a.invoice_id
                            order by a.id""").fetchall()
    requests: list[Transfer] = []
    meter = Progress(sys.stderr, len(rows), "seeding invoices and advances")
    for start in range(0, len(rows), _per_transaction):
        chunk = rows[start:start + _per_transaction]
        invoice_legs = [Leg(chart.supplier_payable(r[1]), Side.CREDIT, r[2]) for r in chunk]
        advance_legs = [Leg(f.advance_code(r[0]), Side.DEBIT, r[3]) for r in chunk]
        requests.append(Transfer(f"bench.invoices:{start}", "factoring.invoice",
                                 [Leg(f.RETAIL_INVENTORY, Side.DEBIT, sum(r[2] for r in chunk)), *invoice_legs],
                                 effective_at=yesterday))
        requests.append(Transfer(f"bench.advances:{start}", "factoring.advance",
                                 [*advance_legs, Leg(chart.OWN_FUNDS, Side.CREDIT, sum(r[3] for r in chunk))],
                                 effective_at=yesterday))
        meter.advance(len(chunk))
        if len(requests) >= _transactions_per_post or start + _per_transaction >= len(rows):
            post(conn, requests)
            requests = []
    meter.finish()
    assert advances == len(rows)


def main() -> None:
    advances = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    assert 1 <= advances <= 10_000_000, "ADVANCES must be 1 to 10,000,000"
    url = scratch_database(database_name, fresh=True)
    print(f"machine: {machine()}; PostgreSQL {server_version(url)}")
    with psycopg.connect(url, autocommit=True) as conn:
        start = time.perf_counter()
        _seed_rows(conn, advances)
        _seed_postings(conn, advances)
        print(f"setup: {advances:,} open advances in {time.perf_counter() - start:.1f} s")
        conn.execute("vacuum analyze")

        today = calendar.today()
        start = time.perf_counter()
        run = fa.accrue_factoring_fees(conn, today, progress=sys.stderr)
        first_s = time.perf_counter() - start
        print(f"accrueFactoringFees({today}): {run.advances_accrued:,} advances, fee {run.fee_fen:,} fen, "
              f"{run.batches} batches of up to {fa.batch_size_max:,} in {first_s:.1f} s "
              f"({run.advances_accrued / first_s:,.0f} advances/s)")
        assert run.advances_accrued == advances

        start = time.perf_counter()
        again = fa.accrue_factoring_fees(conn, today, progress=sys.stderr)
        print(f"second run for the same date: {again.advances_accrued} posted in {time.perf_counter() - start:.1f} s")
        assert again.advances_accrued == 0

        row = conn.execute("select sum(posted_debits) - sum(posted_credits) from ledger.balances").fetchone()
        print(f"trial balance (debits - credits): {row[0] if row else None}")


if __name__ == "__main__":
    main()
