"""The fund area's mutations, one module each (noun first), merged here."""

from __future__ import annotations

from graphql_api.fund.fund_create import FundCreateMutation
from graphql_api.fund.fund_income_publish import FundIncomePublishMutation
from graphql_api.fund.fund_redeem import FundRedeemMutation
from graphql_api.fund.fund_settle import FundSettleMutation
from graphql_api.fund.fund_subscribe import FundSubscribeMutation

__all__ = ["FUND_MUTATIONS"]

FUND_MUTATIONS: list[type] = [
    FundCreateMutation,
    FundSubscribeMutation,
    FundRedeemMutation,
    FundIncomePublishMutation,
    FundSettleMutation,
]
