"""Typed errors in the schema, and the one function turning a core `LedgerError` into one.

Every error type implements `interface LedgerError { code: String! message: String! }`. A
mutation returns a union of its success type and error types (see `result_union`); a query that
fails with a ledger error gets a GraphQL error whose `extensions.code` is the same code.

Adding your own error types (a product area):

    # ledger/products/payments/common.py
    class PaymentNotFound(LedgerError):
        code = "PAYMENT_NOT_FOUND"

    # graphql_api/payments/errors.py
    @strawberry.type
    class PaymentNotFoundError(LedgerErrorType):
        details: JSON

    register_error(payments.PaymentNotFound, PaymentNotFoundError)

    # graphql_api/payments/payment_capture.py
    CapturePaymentResult = result_union("CapturePaymentResult", PaymentCaptured, PaymentNotFoundError)

    ... except LedgerError as exc: return error_result(exc, CapturePaymentResult)

`result_union` always includes the core error types and `OperationRefused`; `error_result` picks
the most specific registered type that is a member of the union (walking the exception's class
hierarchy) and falls back to `OperationRefused`, which carries the error's own code, so an error
class nobody registered still reaches the client typed and with its code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Union, get_args

import strawberry
from strawberry.scalars import JSON

from graphql_api.log_context import note_error_code
from ledger import errors as core

__all__ = [
    "LedgerErrorType",
    "InsufficientFunds",
    "UnbalancedTransaction",
    "IdempotencyConflict",
    "AccountNotFound",
    "CurrencyMismatch",
    "ValidationError",
    "PeriodClosed",
    "HoldNotPending",
    "HoldExpired",
    "HoldNotFound",
    "AccountFrozen",
    "LimitExceeded",
    "TransactionNotFound",
    "AlreadyReversed",
    "Forbidden",
    "OperationRefused",
    "AccessDenied",
    "StatementTimeout",
    "CORE_ERRORS",
    "register_error",
    "error_result",
    "result_union",
]


class AccessDenied(core.LedgerError):
    """The caller's role may not do this (a holder posting, an auditor creating an account)."""

    code = "FORBIDDEN"


class StatementTimeout(core.StatementTimeout):
    """A read ran past the API's statement timeout and was cancelled (retryable, like the core's)."""

    code = "STATEMENT_TIMEOUT"


@strawberry.interface(name="LedgerError", description="An expected failure: `code` is stable, `message` is for people.")
class LedgerErrorType:
    code: str
    message: str


@strawberry.type(description="A posting would take an account's available balance below its lowest allowed balance.")
class InsufficientFunds(LedgerErrorType):
    details: JSON


@strawberry.type(description="Debits and credits of the transaction differ (per currency and layer).")
class UnbalancedTransaction(LedgerErrorType):
    details: JSON


@strawberry.type(description="The idempotency key was used before for a different request.")
class IdempotencyConflict(LedgerErrorType):
    details: JSON


@strawberry.type(description="No account with this code (or none the caller may see).")
class AccountNotFound(LedgerErrorType):
    details: JSON


@strawberry.type(description="A leg's currency differs from its account's.")
class CurrencyMismatch(LedgerErrorType):
    details: JSON


@strawberry.type(description="The input is malformed; `field` names the offending input.")
class ValidationError(LedgerErrorType):
    field: str
    details: JSON


@strawberry.type(description="The effective time lies in a closed period.")
class PeriodClosed(LedgerErrorType):
    details: JSON


@strawberry.type(description="The hold was already posted or voided; a hold resolves exactly once.")
class HoldNotPending(LedgerErrorType):
    details: JSON


@strawberry.type(description="The hold's expiry has passed: it can only be voided now.")
class HoldExpired(LedgerErrorType):
    details: JSON


@strawberry.type(description="No hold with this id.")
class HoldNotFound(LedgerErrorType):
    details: JSON


@strawberry.type(description="The account is frozen or closed and takes no postings.")
class AccountFrozen(LedgerErrorType):
    details: JSON


@strawberry.type(description="A posting would take an account's balance above its highest allowed balance.")
class LimitExceeded(LedgerErrorType):
    details: JSON


@strawberry.type(description="No transaction with this id (or none the caller may see).")
class TransactionNotFound(LedgerErrorType):
    details: JSON


@strawberry.type(description="The transaction was already reversed; a transaction is reversed at most once.")
class AlreadyReversed(LedgerErrorType):
    details: JSON


@strawberry.type(description="The caller's role may not do this.")
class Forbidden(LedgerErrorType):
    details: JSON


@strawberry.type(description="Any other refusal by the ledger; `code` says which (e.g. STATEMENT_TIMEOUT).")
class OperationRefused(LedgerErrorType):
    details: JSON


_REGISTRY: dict[type[core.LedgerError], type[LedgerErrorType]] = {
    core.InsufficientFunds: InsufficientFunds,
    core.UnbalancedTransaction: UnbalancedTransaction,
    core.IdempotencyConflict: IdempotencyConflict,
    core.AccountNotFound: AccountNotFound,
    core.CurrencyMismatch: CurrencyMismatch,
    core.ValidationError: ValidationError,
    core.PeriodClosed: PeriodClosed,
    core.HoldNotPending: HoldNotPending,
    core.HoldExpired: HoldExpired,
    core.HoldNotFound: HoldNotFound,
    core.AccountFrozen: AccountFrozen,
    core.LimitExceeded: LimitExceeded,
    core.TransactionNotFound: TransactionNotFound,
    core.AlreadyReversed: AlreadyReversed,
    AccessDenied: Forbidden,
    core.LedgerError: OperationRefused,
}

# Every mutation's union has these, so any core refusal reaches the client typed.
CORE_ERRORS: tuple[type, ...] = tuple(dict.fromkeys(_REGISTRY.values()))


def register_error(error_class: type[core.LedgerError], graphql_type: type[LedgerErrorType]) -> None:
    """Map a (product) LedgerError subclass to its own schema type."""
    _REGISTRY[error_class] = graphql_type


def result_union(name: str, success: type, *errors: type) -> Any:
    """`union <name> = success | errors | the core errors`, for a mutation's result."""
    members = tuple(dict.fromkeys((success, *errors, *CORE_ERRORS)))
    # Union[...] of a tuple built at run time: `X | Y` needs the members written out.
    return Annotated[Union[members], strawberry.union(name)]  # noqa: UP007


def _union_members(union: Any) -> Sequence[type]:
    args = get_args(union)
    if args and hasattr(args[0], "__args__"):  # Annotated[Union[...], ...]
        return get_args(args[0])
    return args


def error_result(exc: core.LedgerError, union: Any = None) -> LedgerErrorType:
    """The schema error object for a ledger error; `union` (from result_union) limits the choice."""
    allowed = set(_union_members(union)) if union is not None else None
    graphql_type: type[LedgerErrorType] = OperationRefused
    for klass in type(exc).__mro__:
        candidate = _REGISTRY.get(klass)
        if candidate is not None and (allowed is None or candidate in allowed):
            graphql_type = candidate
            break
    note_error_code(exc.code)  # the operation's outcome, for its metrics and log line
    details = {**exc.details, "retryable": True} if exc.retryable else exc.details
    kwargs: dict[str, Any] = {"code": exc.code, "message": exc.message, "details": _jsonable(details)}
    if graphql_type is ValidationError:
        kwargs["field"] = getattr(exc, "field", "") or str(exc.details.get("field", ""))
    return graphql_type(**kwargs)


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    """Details as plain JSON (datetimes as ISO text), never failing on an odd value."""
    def default(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else str(value)
    return dict(json.loads(json.dumps(details, default=default)))
