"""The fund product's typed errors in the schema (see graphql_api/errors.py)."""

from __future__ import annotations

import strawberry

from graphql_api.errors import LedgerErrorType, register_error
from graphql_api.scalars import JSON
from ledger.products import fund as product

__all__ = ["FundNotFound", "FundExists", "IncomeAlreadyPublished", "IncomeOutOfOrder", "IncomeFiguresMissing",
           "HoldingNotFound", "FundDayDistributed", "FUND_ERRORS"]


@strawberry.type(description="No fund with this id.")
class FundNotFound(LedgerErrorType):
    details: JSON


@strawberry.type(description="A fund with this id exists under another name.")
class FundExists(LedgerErrorType):
    details: JSON


@strawberry.type(description="The fund's income for this date was published with a different figure.")
class IncomeAlreadyPublished(LedgerErrorType):
    details: JSON


@strawberry.type(description="Days are published in date order, each distribution finished before the next.")
class IncomeOutOfOrder(LedgerErrorType):
    details: JSON


@strawberry.type(description="A published daily figure the computation needs is missing (`details.missing`).")
class IncomeFiguresMissing(LedgerErrorType):
    details: JSON


@strawberry.type(description="The customer has never held this fund.")
class HoldingNotFound(LedgerErrorType):
    details: JSON


@strawberry.type(description="The fund's income for the operation's business day is already published: "
                             "date it on a later day.")
class FundDayDistributed(LedgerErrorType):
    details: JSON


for _error, _type in ((product.FundNotFound, FundNotFound), (product.FundExists, FundExists),
                      (product.IncomeAlreadyPublished, IncomeAlreadyPublished),
                      (product.IncomeOutOfOrder, IncomeOutOfOrder),
                      (product.IncomeFiguresMissing, IncomeFiguresMissing),
                      (product.HoldingNotFound, HoldingNotFound),
                      (product.FundDayDistributed, FundDayDistributed)):
    register_error(_error, _type)

FUND_ERRORS: tuple[type, ...] = (FundNotFound, FundExists, IncomeAlreadyPublished, IncomeOutOfOrder,
                                 IncomeFiguresMissing, HoldingNotFound, FundDayDistributed)
