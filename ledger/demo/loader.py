"""`load_demo`: every part of the demo book, in order.

Each step is idempotent. A product adds its part with a module in this package and a one-line
edit here: append its function `(conn) -> None` to DEMO_STEPS (dates from `anchor.demo_anchor`,
keys `demo:<area>:...`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from ledger.demo import book
from ledger.demo.credit import load_credit_demo
from ledger.demo.factoring import load_factoring_demo
from ledger.demo.fund import load_fund_demo
from ledger.demo.payments import demo_payments

__all__ = ["DEMO_STEPS", "load_demo"]

# Ordered: later parts use the accounts and money of earlier ones.
DEMO_STEPS: list[Callable[[psycopg.Connection[Any]], None]] = [
    book.platform,
    book.parties,
    book.history,
    book.holds,
    book.reversal,
    load_fund_demo,
    demo_payments,
    load_credit_demo,
    load_factoring_demo,
]


def load_demo(conn: psycopg.Connection[Any], *, say: Callable[[str], None] = lambda _: None) -> None:
    for step in DEMO_STEPS:
        say(f"demo: {step.__name__}")
        step(conn)
