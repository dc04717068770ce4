"""`webhookEndpoints` and `webhookDeliveries` (admin only)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, page_size, require_role
from graphql_api.core.types import PageInfo, parse_id
from graphql_api.webhooks.types import (
    WebhookDelivery,
    WebhookDeliveryConnection,
    WebhookDeliveryEdge,
    WebhookEndpoint,
)
from ledger.tokens import Role
from ledger.webhooks import endpoints as core_endpoints
from ledger.webhooks import log as core_log

__all__ = ["WebhookQuery"]


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="Webhook endpoints, oldest first, with an id above `afterId` (the next page "
                                  "starts after the last id); deleted ones too if asked (admin).")
    async def webhook_endpoints(self, info: Info, include_deleted: bool = False, after_id: strawberry.ID | None = None,
                                first: int | None = None) -> list[WebhookEndpoint]:
        require_role(info, Role.ADMIN)
        after = 0 if after_id is None else parse_id(after_id, "afterId")
        size = page_size(info, first)
        rows = await context_of(info).run(core_endpoints.list_endpoints, include_deleted=include_deleted,
                                          after_id=after, limit=size)
        return [WebhookEndpoint.of(row) for row in rows]

    @strawberry.field(description="An endpoint's delivery attempts, newest first, paged (admin).")
    async def webhook_deliveries(self, info: Info, endpoint_id: strawberry.ID, after: str | None = None,
                                 first: int | None = None) -> WebhookDeliveryConnection:
        require_role(info, Role.ADMIN)
        endpoint = parse_id(endpoint_id, "endpointId")
        size = page_size(info, first)
        page = await context_of(info).run(core_log.deliveries, endpoint, after=after, first=size)
        edges = [WebhookDeliveryEdge(cursor=row.cursor, node=WebhookDelivery.of(row)) for row in page.items]
        page_info = PageInfo.of([e.cursor for e in edges], page.has_next_page, after)
        return WebhookDeliveryConnection(edges=edges, page_info=page_info)
