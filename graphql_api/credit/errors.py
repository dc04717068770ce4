"""The consumer-credit product's typed errors in the schema (see graphql_api/errors.py)."""

from __future__ import annotations

import strawberry

from graphql_api.errors import LedgerErrorType, register_error
from graphql_api.scalars import JSON
from ledger.products import credit, credit_repay

__all__ = ["LoanNotFound", "NoCreditLine", "CreditLimitExceeded", "Overpayment", "QuoteChanged", "LoanClosed",
           "LoanNotWrittenOff", "ConversionRefused"]


@strawberry.type(description="No loan with this id (or none the caller may see).")
class LoanNotFound(LedgerErrorType):
    details: JSON


@strawberry.type(description="The customer has no credit line: open one first.")
class NoCreditLine(LedgerErrorType):
    details: JSON


@strawberry.type(description="The purchase would take the outstanding principal above the credit line.")
class CreditLimitExceeded(LedgerErrorType):
    details: JSON


@strawberry.type(description="More than everything owed (or, for a recovery, than was written off).")
class Overpayment(LedgerErrorType):
    details: JSON


@strawberry.type(description="The payoff amount differs from the expected one (a day passed, a fee was billed).")
class QuoteChanged(LedgerErrorType):
    details: JSON


@strawberry.type(description="The loan was paid off or written off.")
class LoanClosed(LedgerErrorType):
    details: JSON


@strawberry.type(description="Only a written-off loan can be recovered.")
class LoanNotWrittenOff(LedgerErrorType):
    details: JSON


@strawberry.type(description="Only a purchase not yet converted, repaid or overdue converts into instalments.")
class ConversionRefused(LedgerErrorType):
    details: JSON


for _error, _type in ((credit.LoanNotFound, LoanNotFound), (credit.NoCreditLine, NoCreditLine),
                      (credit.CreditLimitExceeded, CreditLimitExceeded), (credit.Overpayment, Overpayment),
                      (credit_repay.QuoteChanged, QuoteChanged), (credit.LoanClosed, LoanClosed),
                      (credit.LoanNotWrittenOff, LoanNotWrittenOff), (credit.ConversionRefused, ConversionRefused)):
    register_error(_error, _type)
