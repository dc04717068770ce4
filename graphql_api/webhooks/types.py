"""The webhook area's types. An endpoint's secret is write-only: no type here can show it."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from graphql_api.core.types import PageInfo
from graphql_api.errors import LedgerErrorType, register_error
from ledger.webhooks import endpoints as core_endpoints
from ledger.webhooks import log as core_log

__all__ = ["WebhookEndpointStatus", "WebhookEndpoint", "WebhookDelivery", "WebhookDeliveryConnection",
           "WebhookEndpointNotFound", "TooManyWebhookEndpoints"]

WebhookEndpointStatus = core_endpoints.EndpointStatus
strawberry.enum(WebhookEndpointStatus, name="WebhookEndpointStatus")


@strawberry.type(description="Where events are sent. Its secret is never shown after creation.")
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    events: list[str]
    status: WebhookEndpointStatus
    created_by: str
    created_at: datetime
    changed_at: datetime | None
    failed_attempts: int = strawberry.field(description="Failed attempts in a row at the next event to send.")
    next_attempt_at: datetime | None = strawberry.field(description="When the next retry is due, if one is.")

    @classmethod
    def of(cls, row: core_endpoints.Endpoint) -> WebhookEndpoint:
        return cls(id=strawberry.ID(str(row.id)), url=row.url, events=list(row.events), status=row.status,
                   created_by=row.created_by, created_at=row.created_at, changed_at=row.changed_at,
                   failed_attempts=row.failed_attempts, next_attempt_at=row.next_attempt_at)


@strawberry.type(description="One attempt to send one event to one endpoint.")
class WebhookDelivery:
    id: strawberry.ID
    endpoint_id: strawberry.ID
    event_id: str
    event_type: str
    transaction_id: strawberry.ID
    attempt: int = strawberry.field(description="1 for the first attempt at this event, then 2, 3...")
    attempted_at: datetime
    duration_ms: int
    status_code: int | None = strawberry.field(description="The endpoint's HTTP status, if it answered.")
    error: str | None = strawberry.field(description="Why the attempt failed; null when delivered.")
    delivered: bool
    next_attempt_at: datetime | None = strawberry.field(description="When the failed event is tried again.")

    @classmethod
    def of(cls, row: core_log.Delivery) -> WebhookDelivery:
        return cls(id=strawberry.ID(str(row.id)), endpoint_id=strawberry.ID(str(row.endpoint_id)),
                   event_id=row.event_id, event_type=row.event_type,
                   transaction_id=strawberry.ID(str(row.transaction_id)), attempt=row.attempt,
                   attempted_at=row.attempted_at, duration_ms=row.duration_ms, status_code=row.status_code,
                   error=row.error, delivered=row.delivered, next_attempt_at=row.next_attempt_at)


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDelivery


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo


@strawberry.type(description="No webhook endpoint with this id (or it is deleted, for a change).")
class WebhookEndpointNotFound(LedgerErrorType):
    details: JSON


@strawberry.type(description="As many webhook endpoints as the ledger keeps exist already.")
class TooManyWebhookEndpoints(LedgerErrorType):
    details: JSON


register_error(core_endpoints.WebhookEndpointNotFound, WebhookEndpointNotFound)
register_error(core_endpoints.TooManyWebhookEndpoints, TooManyWebhookEndpoints)
