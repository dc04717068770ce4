"""`createWebhookEndpoint`, `disableWebhookEndpoint`, `enableWebhookEndpoint`,
`deleteWebhookEndpoint` (admin only). Bad input gets a typed error and writes nothing."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.core.types import parse_id
from graphql_api.errors import error_result, result_union
from graphql_api.webhooks.types import TooManyWebhookEndpoints, WebhookEndpoint, WebhookEndpointNotFound
from ledger.errors import LedgerError
from ledger.tokens import Role
from ledger.webhooks import endpoints as core_endpoints
from ledger.webhooks.settings import WebhookSettings
from ledger.webhooks.targets import url_length_max

__all__ = ["WEBHOOK_MUTATIONS"]


@strawberry.input
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description=f"http:// or https://, at most {url_length_max} characters, no user "
                                            "name or password; loopback and private addresses only where the "
                                            "server allows them.")
    events: list[str] = strawberry.field(description="Event types: " + ", ".join(core_endpoints.EVENT_TYPES))
    secret: str = strawberry.field(description=f"Signs every delivery ({core_endpoints.secret_length_min} to "
                                               f"{core_endpoints.secret_length_max} printable characters); "
                                               "never shown again.")


@strawberry.input
class WebhookEndpointInput:
    id: strawberry.ID


CreateWebhookEndpointResult = result_union("CreateWebhookEndpointResult", WebhookEndpoint, TooManyWebhookEndpoints)
WebhookEndpointResult = result_union("WebhookEndpointResult", WebhookEndpoint, WebhookEndpointNotFound)


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(description="Make an endpoint that is sent, signed, every event of the given types that "
                                     "commits from now on (admin).")
    async def create_webhook_endpoint(self, info: Info, input: CreateWebhookEndpointInput
                                      ) -> CreateWebhookEndpointResult:
        try:
            principal = require_role(info, Role.ADMIN)
            settings = WebhookSettings.from_env()
            row = await context_of(info).run(
                core_endpoints.create_endpoint, input.url, input.events, input.secret,
                created_by=f"token {principal.token_id} ({principal.role.value})",
                allow_private_targets=settings.allow_private_targets)
            return WebhookEndpoint.of(row)
        except LedgerError as exc:
            return error_result(exc, CreateWebhookEndpointResult)

    @strawberry.mutation(description="Stop sending to an endpoint; it keeps its place and resumes from there "
                                     "when enabled (admin).")
    async def disable_webhook_endpoint(self, info: Info, input: WebhookEndpointInput) -> WebhookEndpointResult:
        return await _set_status(info, input, core_endpoints.EndpointStatus.DISABLED)

    @strawberry.mutation(description="Send to a disabled endpoint again, from where it stopped (admin).")
    async def enable_webhook_endpoint(self, info: Info, input: WebhookEndpointInput) -> WebhookEndpointResult:
        return await _set_status(info, input, core_endpoints.EndpointStatus.ACTIVE)

    @strawberry.mutation(description="Delete an endpoint for good: nothing is sent to it again and its secret is "
                                     "erased; its delivery log stays (admin).")
    async def delete_webhook_endpoint(self, info: Info, input: WebhookEndpointInput) -> WebhookEndpointResult:
        return await _set_status(info, input, core_endpoints.EndpointStatus.DELETED)


async def _set_status(info: Info, input: WebhookEndpointInput, status: core_endpoints.EndpointStatus
                      ) -> WebhookEndpointResult:
    try:
        require_role(info, Role.ADMIN)
        row = await context_of(info).run(core_endpoints.set_status, parse_id(input.id, "id"), status)
        return WebhookEndpoint.of(row)
    except LedgerError as exc:
        return error_result(exc, WebhookEndpointResult)


WEBHOOK_MUTATIONS: list[type] = [WebhookMutation]
