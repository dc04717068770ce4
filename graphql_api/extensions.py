"""Schema extensions: the query limits, parse/validation caches, and error shaping.

Ledger errors raised in a query keep their message and carry `extensions.code` (and `field`);
anything unexpected is masked: the client sees a request id, the log has the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, SchemaExtension, ValidationCache
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from graphql_api.context import Limits
from graphql_api.scalars import InvalidScalar
from ledger.errors import LedgerError

__all__ = ["LedgerErrors", "schema_extensions"]

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

    def _request_id(self) -> str:
        return str(getattr(self.execution_context.context, "request_id", "-"))

    def _shape(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if original is None or isinstance(original, (GraphQLError, InvalidScalar)):
            return error
        if isinstance(original, LedgerError):
            extensions: dict[str, Any] = {"code": original.code}
            if getattr(original, "field", ""):
                extensions["field"] = original.field  # type: ignore[attr-defined]
            if original.retryable:
                extensions["retryable"] = True
            return GraphQLError(original.message, error.nodes, error.source, error.positions, error.path,
                                extensions=extensions)
        request_id = self._request_id()
        log.error("request %s: unexpected error at %s", request_id, error.path, exc_info=original)
        return GraphQLError(f"unexpected error (request id {request_id})", error.nodes, error.source,
                            error.positions, error.path,
                            extensions={"code": "INTERNAL", "requestId": request_id})


def schema_extensions(limits: Limits | None = None) -> list[Any]:
    limits = limits or Limits()
    # The depth and alias rules are built once: the validation cache is keyed by the rule
    # classes, so rules made per request (as QueryDepthLimiter does) would never hit it.
    rules: list[type[ASTValidationRule]] = [depth_rule(limits.query_depth_max, None), aliases_rule(limits.aliases_max)]
    # Factories: a fresh extension per request (the caches are shared at module level).
    return [
        lambda: MaxTokensLimiter(max_token_count=limits.tokens_max),
        lambda: AddValidationRules(rules),
        lambda: ParserCache(maxsize=documents_cached_max),
        lambda: ValidationCache(maxsize=documents_cached_max),
        LedgerErrors,
    ]
