"""Schema extensions: the query limits, parse/validation caches, and error shaping.

Before a document is validated, its cost (graphql_api/query_cost.py) and every string the client
sent (graphql_api/input_text.py) are checked; a refusal skips validation and execution.
Ledger errors raised in a query keep their message and carry `extensions.code` (and `field`), as
do database errors `ledger.errors.translate` knows (a value the database refused); anything
unexpected is masked: the client sees a request id, the log has the traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, SchemaExtension, ValidationCache
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from graphql_api.context import Limits
from graphql_api.input_text import unstorable_text_refusal
from graphql_api.observe import OperationObserver
from graphql_api.query_cost import complexity_refusal
from graphql_api.scalars import InvalidScalar
from ledger.errors import LedgerError, translate

__all__ = ["LedgerErrors", "CheckedValidation", "schema_extensions", "shaped_error", "validation_rules", "with_code"]

log = logging.getLogger("graphql_api")
documents_cached_max = 512


class LedgerErrors(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [self._shape(error) for error in errors]  # type: ignore[union-attr]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Subscriptions: each result is shaped before it reaches the client."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [self._shape(error) for error in errors]
        yield

    def _shape(self, error: GraphQLError) -> GraphQLError:
        return shaped_error(error, str(getattr(self.execution_context.context, "request_id", "-")))


def shaped_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """The error as the client sees it: typed ledger and database errors keep their message and
    code, anything unexpected is masked behind the request id (and logged with its traceback)."""
    original = error.original_error
    if original is None or isinstance(original, (GraphQLError, InvalidScalar)):
        return with_code(error)
    if isinstance(original, (CannotGetOperationTypeError, InvalidOperationTypeError)):
        # The request names no operation it holds, or one this transport does not run: over HTTP
        # strawberry answers 400 before here; over the WebSocket it arrives as this error.
        return GraphQLError(error.message, error.nodes, error.source, error.positions, error.path,
                            extensions={"code": "BAD_REQUEST"})
    if isinstance(original, psycopg.Error):
        original = translate(original) or original
    if isinstance(original, LedgerError):
        extensions: dict[str, Any] = {"code": original.code}
        if getattr(original, "field", ""):
            extensions["field"] = original.field  # type: ignore[attr-defined]
        if original.retryable:
            extensions["retryable"] = True
        return GraphQLError(original.message, error.nodes, error.source, error.positions, error.path,
                            extensions=extensions)
    log.error("request %s: unexpected error at %s", request_id, error.path, exc_info=original)
    return GraphQLError(f"unexpected error (request id {request_id})", error.nodes, error.source,
                        error.positions, error.path,
                        extensions={"code": "INTERNAL", "requestId": request_id})


def with_code(error: GraphQLError) -> GraphQLError:
    """graphql-core's own errors about the document or a variable get a code like every other
    error: GRAPHQL_PARSE_FAILED, BAD_USER_INPUT (a variable or scalar), GRAPHQL_VALIDATION_FAILED.
    In place: a parse error raised by the parser cache never reaches LedgerErrors, only the
    schema's process_errors (graphql_api/schema.py)."""
    if error.path is not None or (error.extensions or {}).get("code"):
        return error
    if error.message.startswith("Syntax Error"):
        code = "GRAPHQL_PARSE_FAILED"
    elif isinstance(error.original_error, InvalidScalar) or error.message.startswith("Variable '$"):
        code = "BAD_USER_INPUT"
    else:
        code = "GRAPHQL_VALIDATION_FAILED"
    error.extensions = {**(error.extensions or {}), "code": code}
    return error


class CheckedValidation(ValidationCache):
    """Validation (cached), after the checks that must not wait for it: a document too costly to
    validate, or a string the database cannot store, is refused before validation runs."""

    def __init__(self, limits: Limits, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None  # parsing succeeded, or validation is not reached
        refusal = (complexity_refusal(context.graphql_document, self.limits)
                   or unstorable_text_refusal(context.graphql_document, context.variables))
        if refusal is None:
            yield from super().on_validate()
            return
        context.pre_execution_errors = [refusal]
        yield


@functools.cache
def validation_rules(limits: Limits) -> list[type[ASTValidationRule]]:
    """The depth and alias rules, built once per limits: the validation cache is keyed by the
    rule classes, so rules made per request (as QueryDepthLimiter does) would never hit it."""
    return [depth_rule(limits.query_depth_max, None), aliases_rule(limits.aliases_max)]


def schema_extensions(limits: Limits | None = None) -> list[Any]:
    limits = limits or Limits()
    rules = validation_rules(limits)
    # Factories: a fresh extension per request (the caches are shared at module level).
    return [
        OperationObserver,  # first, so it sees the errors as LedgerErrors shaped them
        lambda: MaxTokensLimiter(max_token_count=limits.tokens_max),
        lambda: AddValidationRules(rules),
        lambda: ParserCache(maxsize=documents_cached_max),
        lambda: CheckedValidation(limits, maxsize=documents_cached_max),
        LedgerErrors,
    ]
