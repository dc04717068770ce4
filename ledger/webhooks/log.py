"""The delivery log: every attempt to send an event to an endpoint, newest first, paged by a
keyset cursor. Append-only (a log of what happened)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from ledger.cursors import decode_cursor, encode_cursor
from ledger.webhooks.endpoints import get_endpoint

__all__ = ["Delivery", "DeliveryPage", "deliveries"]

_CURSOR_FIELDS: dict[str, type] = {"d": int}


@dataclass(frozen=True)
class Delivery:
    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    transaction_id: int
    attempt: int
    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    delivered: bool
    next_attempt_at: datetime | None

    @property
    def cursor(self) -> str:
        return encode_cursor({"d": self.id})


@dataclass(frozen=True)
class DeliveryPage:
    items: list[Delivery]
    has_next_page: bool


def deliveries(conn: psycopg.Connection[Any], endpoint_id: int, *, after: str | None, first: int) -> DeliveryPage:
    """The endpoint's attempts older than the cursor `after` (None: the newest), at most `first`."""
    before_id = 2**63 - 1 if after is None else decode_cursor(after, fields=_CURSOR_FIELDS)["d"]
    get_endpoint(conn, endpoint_id)  # WebhookEndpointNotFound if there is none
    with conn.cursor(row_factory=class_row(Delivery)) as cur:
        rows = cur.execute(
            """select id, endpoint_id, event_id, event_type, transaction_id, attempt, attempted_at, duration_ms,
                      status_code, error, delivered, next_attempt_at
                 from ledger.webhook_deliveries
                where endpoint_id = %s and id < %s
                order by id desc limit %s""", (endpoint_id, before_id, first + 1)).fetchall()
    return DeliveryPage(rows[:first], has_next_page=len(rows) > first)
