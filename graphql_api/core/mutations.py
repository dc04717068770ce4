"""The core's mutations, one module each (noun first), merged here."""

from __future__ import annotations

from graphql_api.core.account_create import AccountCreateMutation
from graphql_api.core.account_limits import AccountLimitsMutation
from graphql_api.core.account_status import AccountStatusMutation
from graphql_api.core.hold_create import HoldCreateMutation
from graphql_api.core.hold_post import HoldPostMutation
from graphql_api.core.hold_void import HoldVoidMutation
from graphql_api.core.period_close import PeriodCloseMutation
from graphql_api.core.transaction_post import TransactionPostMutation
from graphql_api.core.transaction_reverse import TransactionReverseMutation
from graphql_api.core.transactions_post import TransactionsPostMutation

__all__ = ["CORE_MUTATIONS"]

CORE_MUTATIONS: list[type] = [
    AccountCreateMutation,
    AccountStatusMutation,
    AccountLimitsMutation,
    TransactionPostMutation,
    TransactionsPostMutation,
    HoldCreateMutation,
    HoldPostMutation,
    HoldVoidMutation,
    TransactionReverseMutation,
    PeriodCloseMutation,
]
