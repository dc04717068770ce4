"""Consumer credit's typed errors: LedgerError subclasses with stable codes (SQLSTATE class LD05x)."""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = ["LoanNotFound", "NoCreditLine", "CreditLimitExceeded", "Overpayment", "LoanClosed", "LoanNotWrittenOff",
           "ConversionRefused"]


class LoanNotFound(LedgerError):
    code = "LOAN_NOT_FOUND"


class NoCreditLine(LedgerError):
    """The customer has no credit line: open one first."""

    code = "NO_CREDIT_LINE"


class CreditLimitExceeded(LedgerError):
    """The purchase would take the customer's outstanding principal above the credit line."""

    code = "CREDIT_LIMIT_EXCEEDED"


class Overpayment(LedgerError):
    """More than everything the loan owes (or, for a recovery, more than was written off)."""

    code = "OVERPAYMENT"


class LoanClosed(LedgerError):
    """The loan was paid off or written off and takes no more repayments or conversions."""

    code = "LOAN_CLOSED"


class LoanNotWrittenOff(LedgerError):
    """Only a written-off loan can be recovered; an open one is repaid."""

    code = "LOAN_NOT_WRITTEN_OFF"


class ConversionRefused(LedgerError):
    """Only a purchase, not yet converted, repaid or overdue, converts into instalments."""

    code = "CONVERSION_REFUSED"
