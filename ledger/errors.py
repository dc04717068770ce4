"""Typed errors a caller of the ledger can get, and the one place psycopg errors become them.

Every error says what was wrong and what was expected. The database raises ledger errors from
its functions and triggers with SQLSTATEs in class `LD` (see `sql/functions/`); `translate`
maps them, and the constraint violations that guard the same rules, to these classes. Only a
rule the database enforces has an SQLSTATE: an error Python raises itself (a product's, say)
has a `code` and no `sqlstate`.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import psycopg
from psycopg import errors as pg_errors

__all__ = [
    "LedgerError",
    "ValidationError",
    "KnownAtNotFinal",
    "TotalsPast64Bits",
    "UnbalancedTransaction",
    "CurrencyMismatch",
    "AccountNotFound",
    "AccountFrozen",
    "InsufficientFunds",
    "LimitExceeded",
    "IdempotencyConflict",
    "PeriodClosed",
    "HoldNotFound",
    "HoldNotPending",
    "HoldExpired",
    "TransactionNotFound",
    "AlreadyReversed",
    "AppendOnly",
    "AccountNotEmpty",
    "StatusTransitionRefused",
    "LockTimeout",
    "StatementTimeout",
    "DatabaseUnavailable",
    "ReadOnlyDatabase",
    "RateLimited",
    "translate",
    "translated_sqlstates",
]


class LedgerError(Exception):
    """Base of every error a caller can cause; `code` is stable, `message` is for people."""

    code: ClassVar[str] = "LEDGER_ERROR"
    sqlstate: ClassVar[str | None] = None  # the SQLSTATE the database raises this error with
    # Whether the same request may succeed if simply sent again later (nothing was written).
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class ValidationError(LedgerError):
    """The request itself is malformed; `field` names the offending input."""

    code = "VALIDATION"
    sqlstate: ClassVar[str | None] = "LD001"

    def __init__(self, message: str, *, field: str = "", **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class KnownAtNotFinal(ValidationError):
    """A statement asked for as known at a time the journal is not final for yet (after the
    journal horizon, or in the future): it could still change. `horizon` is the latest final time."""

    code = "KNOWN_AT_NOT_FINAL"


class TotalsPast64Bits(ValidationError):
    """Posting would carry an account's balance, or its running debit or credit total, past what
    64 bits hold. Each amount fits; their sum with what the account holds does not. Not final (a
    later posting the other way makes room), so never recorded under the key; the database names
    no request, so a batch posted request by request isolates it by splitting."""

    sqlstate = None


class UnbalancedTransaction(LedgerError):
    code = "UNBALANCED"
    sqlstate = "LD002"


class CurrencyMismatch(LedgerError):
    code = "CURRENCY_MISMATCH"
    sqlstate = "LD003"


class AccountNotFound(LedgerError):
    code = "ACCOUNT_NOT_FOUND"
    sqlstate = "LD004"


class AccountFrozen(LedgerError):
    """The account is frozen or closed and takes no postings."""

    code = "ACCOUNT_FROZEN"
    sqlstate = "LD005"


class InsufficientFunds(LedgerError):
    """A posting would take an account's available balance below its lowest allowed balance."""

    code = "INSUFFICIENT_FUNDS"
    sqlstate = "LD006"


class LimitExceeded(LedgerError):
    """A posting would take an account's balance above its highest allowed balance."""

    code = "LIMIT_EXCEEDED"
    sqlstate = "LD007"


class IdempotencyConflict(LedgerError):
    """The idempotency key was used before for a different request."""

    code = "IDEMPOTENCY_CONFLICT"
    sqlstate = "LD008"


class PeriodClosed(LedgerError):
    code = "PERIOD_CLOSED"
    sqlstate = "LD009"


class HoldNotFound(LedgerError):
    code = "HOLD_NOT_FOUND"
    sqlstate = "LD010"


class HoldNotPending(LedgerError):
    """The hold was already posted or voided; a hold resolves exactly once."""

    code = "HOLD_NOT_PENDING"
    sqlstate = "LD011"


class HoldExpired(HoldNotPending):
    """The hold's expiry has passed: it can only be voided now."""

    code = "HOLD_EXPIRED"
    sqlstate = "LD012"


class TransactionNotFound(LedgerError):
    code = "TRANSACTION_NOT_FOUND"
    sqlstate = "LD013"


class AlreadyReversed(LedgerError):
    code = "ALREADY_REVERSED"
    sqlstate = "LD014"


class AppendOnly(LedgerError):
    """An UPDATE, DELETE or TRUNCATE of an append-only table: a mistake is corrected by a new,
    reversing transaction."""

    code = "APPEND_ONLY"
    sqlstate = "LD015"


class LockTimeout(LedgerError):
    """A row another transaction holds stayed locked past the lock timeout; nothing was written.
    The request itself is fine: send it again (same idempotency key) a little later."""

    code = "LOCK_TIMEOUT"
    retryable = True


class StatementTimeout(LedgerError):
    """A statement ran past the statement timeout and was cancelled; nothing was written."""

    code = "STATEMENT_TIMEOUT"
    retryable = True


class AccountNotEmpty(LedgerError):
    """An account is closed only with a zero posted balance and no open hold."""

    code = "ACCOUNT_NOT_EMPTY"
    sqlstate = "LD030"


class StatusTransitionRefused(LedgerError):
    """The account's status may not go from its current one to the one asked for (a closed
    account is reopened before it is frozen)."""

    code = "STATUS_TRANSITION_REFUSED"
    sqlstate = "LD031"


class DatabaseUnavailable(LedgerError):
    """The database could not be reached or the connection was lost. A posting sent when the
    connection broke may or may not have committed: send it again with the same idempotency key,
    which answers the original if it did."""

    code = "DATABASE_UNAVAILABLE"
    retryable = True


class ReadOnlyDatabase(LedgerError):
    """The database takes no writes here (a standby, or `default_transaction_read_only` is on)."""

    code = "READ_ONLY_DATABASE"


class RateLimited(LedgerError):
    """The caller sent more requests than its token may in this time; `retry_after_s` says when
    to try again."""

    code = "RATE_LIMITED"
    retryable = True

    def __init__(self, message: str, *, retry_after_s: int, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


_BY_SQLSTATE: dict[str, type[LedgerError]] = {
    cls.sqlstate: cls
    for cls in (
        ValidationError,
        UnbalancedTransaction,
        CurrencyMismatch,
        AccountNotFound,
        AccountFrozen,
        InsufficientFunds,
        LimitExceeded,
        IdempotencyConflict,
        PeriodClosed,
        HoldNotFound,
        HoldNotPending,
        HoldExpired,
        TransactionNotFound,
        AlreadyReversed,
        AppendOnly,
        AccountNotEmpty,
        StatusTransitionRefused,
    )
    if cls.sqlstate is not None
}

_REQUEST_POSITION = re.compile(r"^request (\d+)\b")

# Unique constraints that guard a ledger rule: losing a race on one of them is that rule's error.
_BY_CONSTRAINT: dict[str, tuple[type[LedgerError], str]] = {
    "transactions_resolves_hold_id_key": (HoldNotPending, "the hold was resolved by a concurrent request"),
    "transactions_reverses_id_key": (AlreadyReversed, "the transaction was reversed by a concurrent request"),
    "accounts_code_key": (ValidationError, "an account with this code already exists"),
}


def translated_sqlstates() -> frozenset[str]:
    """The SQLSTATEs `translate` turns into a LedgerError class."""
    return frozenset(_BY_SQLSTATE)


# A check or unique violation as a Citus worker reports it: the coordinator passes on the message
# alone, which names the shard ("period_closes_102041") and the constraint (a unique constraint's
# index carries the shard's number too: "transactions_resolves_hold_id_key_102012").
_SHARD_CHECK_VIOLATION = re.compile(r'new row for relation "([^"]+?)(?:_\d+)?" violates check constraint "([^"]+)"')
_SHARD_UNIQUE_VIOLATION = re.compile(r'duplicate key value violates unique constraint "([^"]+?)(?:_\d+)?"')


def _unique_constraint(exc: psycopg.Error) -> str | None:
    """The unique constraint a violation names: from its fields, else from its message."""
    diag = exc.diag
    if diag.constraint_name:
        return diag.constraint_name
    found = _SHARD_UNIQUE_VIOLATION.match(diag.message_primary or "")
    return found.group(1) if found else None


def _check_constraint(exc: psycopg.Error) -> tuple[str, str]:
    """The (constraint, table) a check violation names: from its fields, else from its message."""
    diag = exc.diag
    if diag.constraint_name:
        return diag.constraint_name, diag.table_name or ""
    found = _SHARD_CHECK_VIOLATION.match(diag.message_primary or "") if diag.sqlstate == "23514" else None
    return (found.group(2), found.group(1)) if found else ("", "")


def translate(exc: psycopg.Error) -> LedgerError | None:
    """The LedgerError a database error stands for, or None when it is not a caller's error."""
    sqlstate = exc.sqlstate or ""
    diag = exc.diag
    transient = _transient(exc)
    if transient is not None:
        return transient
    if sqlstate in _BY_SQLSTATE:
        details: dict[str, Any] = {}
        if diag.message_detail:
            try:
                details = json.loads(diag.message_detail)
            except ValueError:
                details = {"detail": diag.message_detail}
        message = diag.message_primary or str(exc)
        position = _REQUEST_POSITION.match(message)
        if position:
            details["request"] = int(position.group(1))  # 1-based position in the batch
        cls = _BY_SQLSTATE[sqlstate]
        if cls is ValidationError:
            return ValidationError(message, **details)
        return cls(message, **details)
    unique = _unique_constraint(exc) if isinstance(exc, pg_errors.UniqueViolation) else None
    if unique in _BY_CONSTRAINT:
        cls, message = _BY_CONSTRAINT[unique]
        return cls(message)
    name, table = _check_constraint(exc)
    if isinstance(exc, pg_errors.CheckViolation) and name.endswith("_range"):
        # sql/0082_instant_range.sql: a time or date outside the range the core can read; the
        # constraints are named <table>_<column>_range.
        column = name[len(table) + 1:-len("_range")] if name.startswith(f"{table}_") else ""
        return ValidationError(
            f"{column or 'a time'} must lie in [1970-01-01T00:00:00Z, 9999-01-01T00:00:00Z)",
            field=column, constraint=name)
    if isinstance(exc, pg_errors.NumericValueOutOfRange):
        return ValidationError(f"a number is out of range: {diag.message_primary}", field="amount")
    return _data_error(exc)


def _data_error(exc: psycopg.Error) -> ValidationError | None:
    """A value the database refuses (SQLSTATE class 22: too long, out of range, a bad time, NUL
    or a bad encoding), or one psycopg refuses to send (a NUL in text), came from the caller."""
    sqlstate = exc.sqlstate or ""
    if not (sqlstate.startswith("22") or (not sqlstate and isinstance(exc, psycopg.DataError))):
        return None
    reason = exc.diag.message_primary or str(exc).partition("\n")[0]
    field = exc.diag.column_name or "input"
    return ValidationError(f"the database refused a value: {reason}", field=field, sqlstate=sqlstate)


def _transient(exc: psycopg.Error) -> LedgerError | None:
    """Waits cut short and lost connections: not the request's fault, so retryable."""
    if isinstance(exc, pg_errors.LockNotAvailable):
        return LockTimeout("an account or hold this request touches is locked by another transaction "
                           "and stayed locked past the lock timeout; nothing was written, send the "
                           "request again (same idempotency key)")
    if isinstance(exc, pg_errors.QueryCanceled):
        return StatementTimeout("a database statement ran past the statement timeout and was cancelled; "
                                "nothing was written")
    # No SQLSTATE: the client's own failure to connect or to keep the connection; 08: connection
    # exceptions; 57P: the server shutting down or restarting.
    if isinstance(exc, psycopg.OperationalError) and (exc.sqlstate is None or exc.sqlstate[:2] == "08"
                                                      or exc.sqlstate[:3] == "57P"):
        # The driver's text names hosts and users: it stays in the server's log, not the answer.
        return DatabaseUnavailable("the database could not be reached or the connection was lost; if a "
                                   "posting was under way, send it again with the same idempotency key")
    return None
