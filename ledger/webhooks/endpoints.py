"""Webhook endpoints: made with a URL, the events wanted and a secret; listed, disabled, enabled
again, deleted. The secret is never read back out: only deliveries use it.

Events: `transaction.posted` (every transaction the journal records: postings, holds, their
resolutions and reversals; the body says which). A deleted endpoint keeps its row and its
delivery log, loses its secret, and is never sent anything again. A new endpoint is sent what
commits from its creation on, not the journal's past (that is what the journal feed is for).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import kwargs_row

from ledger.errors import LedgerError, ValidationError
from ledger.text import unstorable_character
from ledger.webhooks.targets import check_url

__all__ = [
    "EVENT_TYPES", "EndpointStatus", "Endpoint", "WebhookEndpointNotFound", "TooManyWebhookEndpoints",
    "create_endpoint", "list_endpoints", "get_endpoint", "set_status", "delete_endpoint",
    "secret_length_min", "secret_length_max", "endpoints_max",
]

EVENT_TYPES = ("transaction.posted",)
secret_length_min = 16
secret_length_max = 256
endpoints_max = 100  # not deleted, at once: each one is a stream of requests the server makes
_CREATE_LOCK = 0x4C444757  # an advisory lock held while counting and adding endpoints


class EndpointStatus(enum.Enum):
    ACTIVE = "active"      # sent to
    DISABLED = "disabled"  # kept where it was; sent to again from there once enabled
    DELETED = "deleted"    # never again; its delivery log stays


class WebhookEndpointNotFound(LedgerError):
    code = "WEBHOOK_ENDPOINT_NOT_FOUND"


class TooManyWebhookEndpoints(LedgerError):
    code = "TOO_MANY_WEBHOOK_ENDPOINTS"


@dataclass(frozen=True)
class Endpoint:
    id: int
    url: str
    events: list[str]
    status: EndpointStatus
    created_by: str
    created_at: datetime
    changed_at: datetime | None
    failed_attempts: int              # in a row, at the next transaction to send
    next_attempt_at: datetime | None  # when the next retry is due (None: nothing failing)


_COLUMNS = """e.id, e.url, e.events, e.status, e.created_by, e.created_at, e.changed_at,
    coalesce(p.attempts, 0) as failed_attempts, p.next_attempt_at"""
_FROM = "ledger.webhook_endpoints e left join ledger.webhook_positions p on p.endpoint_id = e.id"


def _row(**row: Any) -> Endpoint:
    return Endpoint(**{**row, "status": EndpointStatus(row["status"])})


def check_events(events: object) -> list[str]:
    if not isinstance(events, list) or not events:
        raise ValidationError(f"events must list at least one of: {', '.join(EVENT_TYPES)}", field="events")
    if len(events) > len(EVENT_TYPES) or len(set(events)) != len(events):
        raise ValidationError("events may name each event type once", field="events")
    for event in events:
        if event not in EVENT_TYPES:
            shown = str(event)[:40] if isinstance(event, str) else type(event).__name__
            raise ValidationError(f"events: {shown!r} is not an event type (known: {', '.join(EVENT_TYPES)})",
                                  field="events")
    return list(events)


def check_secret(secret: object) -> str:
    if not isinstance(secret, str) or not secret_length_min <= len(secret) <= secret_length_max:
        raise ValidationError(f"secret must be {secret_length_min} to {secret_length_max} characters",
                              field="secret")
    if unstorable_character(secret) is not None or not secret.isprintable():
        raise ValidationError("secret may hold only printable characters (no NUL, newline or other control)",
                              field="secret")
    return secret


def create_endpoint(conn: psycopg.Connection[Any], url: object, events: object, secret: object, *,
                    created_by: str, allow_private_targets: bool) -> Endpoint:
    """A new active endpoint, sent the transactions that commit from now on."""
    check_url(url, allow_private_targets=allow_private_targets)
    wanted = check_events(events)
    key = check_secret(secret)
    # Read before the transaction below, in its own statement (ledger/feed.py): every journal
    # transaction older than it has finished, so the ones it leaves out committed before now.
    horizon = conn.execute("select xmin::text from ledger.journal_horizon()").fetchone()
    assert horizon is not None
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
        count = conn.execute("select count(*) from ledger.webhook_endpoints where status <> 'deleted'").fetchone()
        if count is not None and count[0] >= endpoints_max:
            raise TooManyWebhookEndpoints(f"there are {endpoints_max} webhook endpoints already; delete one first",
                                          endpoints_max=endpoints_max)
        row = conn.execute(
            """insert into ledger.webhook_endpoints (url, events, secret, created_by)
               values (%s, %s, %s, %s) returning id""", (url, wanted, key, created_by)).fetchone()
        assert row is not None
        # Position: just before the horizon's transaction, so a transaction written by it or
        # any later one is sent.
        conn.execute("""insert into ledger.webhook_positions (endpoint_id, after_xact, after_transaction_id)
                        values (%s, %s::text::xid8, 0)""", (row[0], horizon[0]))
    return get_endpoint(conn, row[0])


def get_endpoint(conn: psycopg.Connection[Any], endpoint_id: int) -> Endpoint:
    with conn.cursor(row_factory=kwargs_row(_row)) as cur:
        found = cur.execute(f"select {_COLUMNS} from {_FROM} where e.id = %s", (endpoint_id,)).fetchone()
    if found is None:
        raise WebhookEndpointNotFound(f"no webhook endpoint {endpoint_id}", id=str(endpoint_id))
    return found


def list_endpoints(conn: psycopg.Connection[Any], *, include_deleted: bool = False, after_id: int = 0,
                   limit: int = endpoints_max) -> list[Endpoint]:
    """Endpoints with an id above `after_id`, oldest first, at most `limit` (deleted endpoints
    pile up over the years: the list is paged by id)."""
    with conn.cursor(row_factory=kwargs_row(_row)) as cur:
        return cur.execute(f"""select {_COLUMNS} from {_FROM} where (%s or e.status <> 'deleted') and e.id > %s
                                order by e.id limit %s""", (include_deleted, after_id, limit)).fetchall()


def set_status(conn: psycopg.Connection[Any], endpoint_id: int, status: EndpointStatus) -> Endpoint:
    """Disable or enable an endpoint (not a deleted one); setting the status it has is no change."""
    if status is EndpointStatus.DELETED:
        return delete_endpoint(conn, endpoint_id)
    # statement_timestamp() (stable), not clock_timestamp(): Citus refuses an UPDATE of a distributed
    # or reference table that calls a volatile function (here and in delete_endpoint).
    conn.execute("""update ledger.webhook_endpoints set status = %s, changed_at = statement_timestamp()
                     where id = %s and status not in ('deleted', %s)""", (status.value, endpoint_id, status.value))
    found = get_endpoint(conn, endpoint_id)
    if found.status is EndpointStatus.DELETED:
        raise WebhookEndpointNotFound(f"webhook endpoint {endpoint_id} is deleted", id=str(endpoint_id))
    return found


def delete_endpoint(conn: psycopg.Connection[Any], endpoint_id: int) -> Endpoint:
    """Delete an endpoint: nothing is sent to it again, its secret is erased, its log stays."""
    conn.execute("""update ledger.webhook_endpoints set status = 'deleted', secret = null,
                           changed_at = statement_timestamp()
                     where id = %s and status <> 'deleted'""", (endpoint_id,))
    found = get_endpoint(conn, endpoint_id)
    return found
