"""Consumer credit's typed errors: LedgerError subclasses with stable codes (SQLSTATE class LD05x)."""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = ["LoanNotFound", "NoCreditLine", "CreditLimitExceeded", "Overpayment", "LoanClosed", "LoanNotWrittenOff",
           "ConversionRefused"]


class LoanNotFound(LedgerError):
    code = "LOAN_NOT_FOUND"
    sqlstate = "LD050"


class NoCreditLine(LedgerError):
    """The customer has no credit line: open one first."""

    code = "NO_CREDIT_LINE"
    sqlstate = "LD051"


class CreditLimitExceeded(LedgerError):
    """The purchase would take the customer's outstanding principal above the credit line."""

    code = "CREDIT_LIMIT_EXCEEDED"
    sqlstate = "LD052"


class Overpayment(LedgerError):
    """More than everything the loan owes (or, for a recovery, more than was written off)."""

    code = "OVERPAYMENT"
    sqlstate = "LD053"


class LoanClosed(LedgerError):
    """The loan was paid off or written off and takes no more repayments or conversions."""

    code = "LOAN_CLOSED"
    sqlstate = "LD054"


class LoanNotWrittenOff(LedgerError):
    """Only a written-off loan can be recovered; an open one is repaid."""

    code = "LOAN_NOT_WRITTEN_OFF"
    sqlstate = "LD055"


class ConversionRefused(LedgerError):
    """Only a purchase, not yet converted, repaid or overdue, converts into instalments."""

    code = "CONVERSION_REFUSED"
    sqlstate = "LD056"
