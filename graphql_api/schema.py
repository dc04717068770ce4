"""The schema: every area's Query, Mutation and Subscription types merged into one.

An area adds its types with a one-line edit to the lists below (keep them importable).
After changing the schema, regenerate the SDL snapshot (a test compares them):

    .venv/bin/python -m graphql_api.schema > graphql_api/schema.graphql
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from graphql_api.audit.mutations import AUDIT_MUTATIONS
from graphql_api.audit.queries import AuditQuery
from graphql_api.core.mutations import CORE_MUTATIONS
from graphql_api.core.queries import CoreQuery
from graphql_api.core.subscriptions import CoreSubscription
from graphql_api.core.transaction_find import TransactionFindQuery
from graphql_api.credit.mutations import CREDIT_MUTATIONS
from graphql_api.credit.queries import CreditQuery
from graphql_api.credit.settings import CreditSettingsQuery
from graphql_api.extensions import schema_extensions, with_code
from graphql_api.factoring.mutations import FACTORING_MUTATIONS
from graphql_api.factoring.queries import FactoringQuery
from graphql_api.fund.mutations import FUND_MUTATIONS
from graphql_api.fund.queries import FundQuery
from graphql_api.input_conversion import name_arguments_once
from graphql_api.operation_kind import OperationKind
from graphql_api.payments.mutations import PAYMENTS_MUTATIONS
from graphql_api.payments.queries import PaymentsQuery
from graphql_api.scalars import SCALAR_MAP
from graphql_api.webhooks.mutations import WEBHOOK_MUTATIONS
from graphql_api.webhooks.queries import WebhookQuery

__all__ = ["QUERIES", "MUTATIONS", "SUBSCRIPTIONS", "schema", "sdl"]

QUERIES: list[type] = [
    CoreQuery,
    TransactionFindQuery,
    AuditQuery,
    FactoringQuery,
    FundQuery,
    PaymentsQuery,
    CreditQuery,
    CreditSettingsQuery,
    WebhookQuery,
]

MUTATIONS: list[type] = [
    *CORE_MUTATIONS,
    *AUDIT_MUTATIONS,
    *FACTORING_MUTATIONS,
    *FUND_MUTATIONS,
    *PAYMENTS_MUTATIONS,
    *CREDIT_MUTATIONS,
    *WEBHOOK_MUTATIONS,
]

SUBSCRIPTIONS: list[type] = [
    CoreSubscription,
]

Query = merge_types("Query", tuple(QUERIES))
Mutation = merge_types("Mutation", tuple(MUTATIONS))
Subscription = merge_types("Subscription", tuple(SUBSCRIPTIONS))

class _Schema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """Expected errors are answers, not incidents; the unexpected ones are logged (with the
        request id) by graphql_api.extensions.LedgerErrors. Errors met before execution get
        their code here."""
        for error in errors:
            with_code(error)


schema = _Schema(query=Query, mutation=Mutation, subscription=Subscription,
                 extensions=[*schema_extensions(), OperationKind], config=StrawberryConfig(scalar_map=SCALAR_MAP))
name_arguments_once(schema)  # a name strawberry would derive again for every resolver call


def sdl() -> str:
    return schema.as_str() + "\n"


if __name__ == "__main__":
    print(sdl(), end="")
