"""Benchmark: how long a statement PDF takes to make, against the same statement as CSV.

Makes statements of N lines in memory (no database: what is measured is the file, not the
reads), with Chinese descriptions, one in ten long enough to wrap, and times
`ledger.statement_export.to_pdf` against `to_csv` of the same statement in the same run (the
anchor), best of three. Prints lines per second and the PDF/CSV ratio per size.

    .venv/bin/python bench/bench_statement_pdf.py [--lines 1000 10000 20000]

Not run by the tests.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from _common import machine

from ledger.accounts import Account
from ledger.statement_export import Statement, to_csv, to_pdf
from ledger.statements import StatementLine

START = datetime(2026, 10, 1, tzinfo=UTC)


def statement(lines: int) -> Statement:
    account = Account(1, "liabilities:wallets:zhang", "张敏的钱包", "liability", "credit", "CNY", "zhang",
                      None, None, "open", {}, START)
    rows = [StatementLine(n, n, n, "credit" if n % 3 else "debit", 123_456 + n, START + timedelta(seconds=20 * n),
                          START, 1_000_000_000 + n, "") for n in range(lines)]
    kinds = {n: ("wallet.move", f"转账给李雷 第{n}笔" + (" 很长的说明" * 20 if n % 10 == 0 else ""))
             for n in range(lines)}
    return Statement(account, START, START + timedelta(days=31), START, 1, 0, 0, 0, 0, rows, kinds, [], 0)


def best_s(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000, 10_000, 20_000])
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"{'lines':>8} {'csv s':>8} {'pdf s':>8} {'pdf lines/s':>12} {'pdf/csv':>8} {'pdf KiB':>8}")
    to_pdf(statement(1))  # the font is read once per process: not part of any size's figure
    for lines in args.lines:
        s = statement(lines)
        repeat = 3
        csv_s = best_s(lambda s=s: to_csv(s), repeat)
        pdf_s = best_s(lambda s=s: to_pdf(s), repeat)
        size_kib = len(to_pdf(s)) // 1024
        print(f"{lines:>8,} {csv_s:>8.3f} {pdf_s:>8.2f} {lines / pdf_s:>12,.0f} {pdf_s / csv_s:>8.1f} {size_kib:>8,}")


if __name__ == "__main__":
    main()
