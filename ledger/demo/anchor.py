"""What every part of the demo shares: its parties, its history length and its anchor date.

Loading is idempotent because every date derives from the first load's anchor (the paid-in
capital's effective time) and every request has a fixed `demo:` idempotency key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ledger import calendar
from ledger.journal import get_transaction_by_key

__all__ = ["ANCHOR_KEY", "demo_anchor", "CUSTOMERS", "MERCHANTS", "SUPPLIERS", "BANKS", "history_days"]

history_days = 120
CUSTOMERS = {"U1001": "Li Wei", "U1002": "Wang Fang", "U1003": "Zhang Min"}
MERCHANTS = {"M2001": "Green Tea House", "M2002": "Bookworm Books"}
SUPPLIERS = {"S3001": "Huaxin Components"}
BANKS = {"icbc": "ICBC", "cmb": "China Merchants Bank"}
ANCHOR_KEY = "demo:platform:capital"  # the book's first posting; its effective time is the anchor


def demo_anchor(conn: psycopg.Connection[Any]) -> datetime:
    """Start of the demo history: fixed at the first load, so later loads replay the same dates."""
    capital = get_transaction_by_key(conn, ANCHOR_KEY)
    if capital is not None:
        return capital.effective_at
    # In UTC, as the journal gives it back on a later load (the request must read the same).
    start = calendar.day_start(calendar.today() - timedelta(days=history_days)) + timedelta(hours=9)
    return start.astimezone(UTC)
