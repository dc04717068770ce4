"""Closing periods: once closed, no effective time at or before the close is accepted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from ledger.errors import translate
from ledger.instants import check_instant

__all__ = ["close_period", "closed_until"]


def close_period(conn: psycopg.Connection[Any], until: datetime) -> datetime:
    """Close the books up to and including `until`; waits for postings already under way."""
    check_instant(until, "until")
    try:
        with conn.transaction():
            conn.execute("select ledger.close_period(%s)", (until,))
    except psycopg.Error as exc:
        error = translate(exc)
        if error is None:
            raise
        raise error from exc
    return until


def closed_until(conn: psycopg.Connection[Any]) -> datetime | None:
    row = conn.execute("select max(closed_until) from ledger.period_closes").fetchone()
    return row[0] if row else None
