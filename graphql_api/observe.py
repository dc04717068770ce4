"""Each GraphQL operation, seen from outside: counted and timed in the app's metrics, named for
the log lines it causes, and logged once when it ends (logger `graphql_api.requests`).

The outcome is `ok`, or the first error code the client got: a typed error a mutation returned
as data (noted by graphql_api.errors.error_result), else the `extensions.code` of the first
entry in `errors` (`INTERNAL` for the unexpected; `GRAPHQL_VALIDATION_FAILED` for a request that does
not parse or validate, which carries no code).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from graphql_api.log_context import error_codes_var, operation_var
from graphql_api.metrics import metrics_of

__all__ = ["OperationObserver", "operation_started", "operation_ended"]

log = logging.getLogger("graphql_api.requests")


def operation_started() -> tuple[float, list[str]]:
    """The start time and the list the operation's typed error codes are noted in."""
    codes: list[str] = []
    # Set, never reset: hooks of a subscription may end in another context than they began,
    # and each operation sets its own values at its start.
    error_codes_var.set(codes)
    return time.perf_counter(), codes


def operation_ended(context: Any, kind: str, name: str | None, started: float, codes: list[str],
                    errors: Any) -> None:
    """Counts, times and logs the operation that began at `started`."""
    seconds = time.perf_counter() - started
    outcome = codes[0] if codes else _error_code(errors)
    state = getattr(context, "state", None)
    if state is not None:
        metrics_of(state).observe_operation(kind, name, outcome, seconds)
    operation_var.set(f"{kind} {name or 'anonymous'}")
    log.info("%s %s: %s in %.1f ms", kind, name or "anonymous", outcome, seconds * 1000)


def _error_code(errors: Any) -> str:
    if not errors:
        return "ok"
    code = (errors[0].extensions or {}).get("code")
    return str(code) if code else "GRAPHQL_VALIDATION_FAILED"


class OperationObserver(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started, codes = operation_started()
        yield
        kind, name = self._kind_and_name()
        operation_ended(self.execution_context.context, kind, name, started, codes,
                        getattr(self.execution_context.result, "errors", None))

    def on_execute(self) -> Iterator[None]:
        # Parsed by now: what resolvers log is tagged with the operation.
        kind, name = self._kind_and_name()
        operation_var.set(f"{kind} {name or 'anonymous'}")
        yield

    def _kind_and_name(self) -> tuple[str, str | None]:
        context = self.execution_context
        try:
            kind = context.operation_type.value
        except Exception:  # noqa: BLE001 - no document (it did not parse)
            return "unknown", None
        return kind, context.operation_name
