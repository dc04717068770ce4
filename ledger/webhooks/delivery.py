"""Delivery: every active endpoint is sent the journal feed's transactions, one request each, in
the feed's order, at least once.

The feed (ledger/feed.py) orders transactions by the database transaction that wrote them and
returns only those below the journal horizon, so one committed late is never skipped. Each
endpoint's position in it is stored (ledger.webhook_positions) and moves past a transaction only
after the endpoint answered 2xx, in the same database transaction that logs the attempt. A
restart resumes from there: a transaction sent but not yet recorded is sent again (at least
once; the event id lets the receiver drop it). A failure stops that endpoint where it is (its
later transactions wait: the order holds) and schedules a retry after a delay that doubles per
failure up to a maximum; an endpoint is retried until it answers, or is disabled or deleted.

No database transaction is open while a request is in flight: a slow endpoint never holds back
the journal horizon, nor locks anything.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row

from ledger.accounts import get_accounts
from ledger.errors import ValidationError
from ledger.feed import FeedItem, feed_cursor, item_json, journal_page
from ledger.webhooks.sending import Outcome, post
from ledger.webhooks.settings import WebhookSettings
from ledger.webhooks.signing import SIGNATURE_HEADER, signature_header
from ledger.webhooks.targets import Target, check_url

__all__ = ["event_id", "event_body", "deliver_pass"]

EVENT_TYPE = "transaction.posted"


@dataclass(frozen=True)
class _Due:
    id: int
    url: str
    events: list[str]
    secret: str
    after_xact: int
    after_transaction_id: int
    attempts: int


_DUE_SQL = """
select e.id, e.url, e.events, e.secret, p.after_xact::text::bigint as after_xact, p.after_transaction_id,
       p.attempts
  from ledger.webhook_endpoints e join ledger.webhook_positions p on p.endpoint_id = e.id
 where e.status = 'active' and (p.next_attempt_at is null or p.next_attempt_at <= clock_timestamp())
 order by e.id
"""


def event_id(transaction_id: int) -> str:
    """The event's id: the same for every attempt, so a receiver can drop duplicates."""
    return f"{EVENT_TYPE}:{transaction_id}"


def event_body(item: FeedItem, codes: dict[int, str]) -> bytes:
    event = {"id": event_id(item.transaction.id), "type": EVENT_TYPE, "data": item_json(item, codes)}
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


# The statement's own time (statement_timestamp(), stable), not clock_timestamp() (volatile): Citus
# refuses an UPDATE of a distributed or reference table that calls a volatile function, and
# evaluates a stable one that reads no column once, on the coordinator, as one server does.
_RECORD_SQL = """
with moved as (
    update ledger.webhook_positions p
       set after_xact = case when %(ok)s then %(xact)s::text::xid8 else p.after_xact end,
           after_transaction_id = case when %(ok)s then %(tid)s else p.after_transaction_id end,
           attempts = case when %(ok)s then 0 else p.attempts + 1 end,
           next_attempt_at = case when %(ok)s then null
                                  else statement_timestamp() + %(delay_ms)s * interval '1 millisecond' end,
           updated_at = statement_timestamp()
      from ledger.webhook_endpoints e
     where p.endpoint_id = %(endpoint)s and e.id = p.endpoint_id and e.status = 'active'
       and p.after_xact = %(old_xact)s::text::xid8 and p.after_transaction_id = %(old_tid)s
       and p.attempts = %(old_attempts)s
    returning p.next_attempt_at
), logged as (
    insert into ledger.webhook_deliveries (endpoint_id, event_id, event_type, transaction_id, attempt,
                                           duration_ms, status_code, error, delivered, next_attempt_at)
    select %(endpoint)s, %(event_id)s, %(event_type)s, %(tid)s, %(attempt)s, %(duration_ms)s, %(status_code)s,
           %(error)s, %(ok)s, (select next_attempt_at from moved)
    returning id
)
select (select count(*) from moved), (select count(*) from logged)
"""


def _record(conn: psycopg.Connection[Any], due: _Due, item: FeedItem, attempt: int, outcome: Outcome,
            delay_ms: int) -> bool:
    """Log the attempt and move the position (or schedule the retry), in one statement: one
    round trip, one database transaction. False when the position moved under us (another
    worker) or the endpoint stopped being active; the attempt is logged all the same."""
    row = conn.execute(_RECORD_SQL, {
        "ok": outcome.delivered, "xact": str(item.created_xact), "tid": item.transaction.id, "delay_ms": delay_ms,
        "endpoint": due.id, "old_xact": str(due.after_xact), "old_tid": due.after_transaction_id,
        "old_attempts": attempt - 1, "event_id": event_id(item.transaction.id), "event_type": EVENT_TYPE,
        "attempt": attempt, "duration_ms": outcome.duration_ms, "status_code": outcome.status_code,
        "error": outcome.error}).fetchone()
    assert row is not None and row[1] == 1
    return bool(row[0])


def _deliver_endpoint(conn: psycopg.Connection[Any], due: _Due, settings: WebhookSettings,
                      codes: dict[int, str]) -> int:
    """Send the endpoint its next page of transactions until one fails; how many were sent."""
    try:
        target: Target | None = check_url(due.url, allow_private_targets=settings.allow_private_targets)
        refusal = ""
    except ValidationError as exc:  # made while private targets were allowed, and they no longer are
        target, refusal = None, f"refused: {exc.message}"
    sent = 0
    # One page per pass: an endpoint with a long backlog takes turns with the others.
    page = journal_page(conn, after=feed_cursor(due.after_xact, due.after_transaction_id), first=settings.batch_size)
    missing = sorted({e.account_id for i in page.items for e in i.entries} - set(codes))
    if missing:
        codes.update({i: a.code for i, a in get_accounts(conn, missing).items()})
    for item in page.items:
        body = event_body(item, codes)
        timestamp_s = int(time.time())
        outcome = Outcome(False, None, refusal, 0) if target is None else post(target, body, {
            SIGNATURE_HEADER: signature_header(due.secret, timestamp_s, body),
            "Ledger-Webhook-Id": event_id(item.transaction.id),
            "Ledger-Webhook-Event": EVENT_TYPE,
        }, timeout_ms=settings.timeout_ms, allow_private_targets=settings.allow_private_targets)
        attempt = due.attempts + 1
        delay_ms = settings.retry_delay_ms(attempt)
        if not _record(conn, due, item, attempt, outcome, delay_ms) or not outcome.delivered:
            return sent
        sent += 1
        due = _Due(due.id, due.url, due.events, due.secret, item.created_xact, item.transaction.id, 0)
    return sent


def deliver_pass(conn: psycopg.Connection[Any], settings: WebhookSettings) -> int:
    """One round over the endpoints due now, a page each (autocommit connection); how many events
    were delivered. The worker runs the next round at once while rounds deliver something."""
    with conn.cursor(row_factory=class_row(_Due)) as cur:
        due = cur.execute(_DUE_SQL).fetchall()
    codes: dict[int, str] = {}
    return sum(_deliver_endpoint(conn, endpoint, settings, codes) for endpoint in due)
