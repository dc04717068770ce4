"""The direct execution path: a POSTed JSON request for a prepared document runs on graphql-core
without strawberry's per-request machinery.

Profiled under load, strawberry's HTTP view and extension runner (a context manager per hook per
extension, made anew for every request) cost about a quarter of the server's CPU for a balance
query or a posting, more than the resolvers they run. Here a request whose document is prepared
(graphql_api/prepared.py: parsed, costed, validated once per text) is executed by graphql-core
with strawberry's own execution context class, so resolvers see the same `Info`, and the
extensions' work is done inline, in the same order: the operation is observed (metrics, one log
line), marked read-only or not, its errors coded and shaped.

Everything else (GET, other content types, a body strawberry would refuse, a document that does
not parse or validate, a subscription, an operation name the document does not have, a variable
holding an unstorable string) takes the full path, which answers exactly as it always has. The
caller (LedgerGraphQL) has checked the bearer token and the rate limit first, for both paths.

Persisted queries (graphql_api/persisted.py) are resolved here, for both paths.
"""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING, Any, cast

from graphql import ExecutionResult, OperationType, execute
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.execution import optimized_is_awaitable

from graphql_api.context import Limits
from graphql_api.extensions import shaped_error, with_code
from graphql_api.input_text import unstorable_variable_refusal
from graphql_api.log_context import operation_var
from graphql_api.observe import operation_ended, operation_started
from graphql_api.persisted import PersistedQueries, PersistedQueryError
from graphql_api.prepared import PreparedDocuments
from graphql_api.schema import schema

if TYPE_CHECKING:
    from graphql_api.app import LedgerGraphQL

__all__ = ["DirectExecution"]

_REQUEST_KEYS = frozenset({"query", "variables", "operationName", "extensions"})


class DirectExecution:
    def __init__(self, limits: Limits) -> None:
        self.documents = PreparedDocuments(schema._schema, limits)
        self.persisted = PersistedQueries()
        self.plans_enabled = True  # compiled plans for plain queries (graphql_api/query_plan.py); off in tests comparing
        self.planned = 0  # requests a plan answered, for tests and the benchmark

    async def respond(self, view: LedgerGraphQL, request: Request) -> Response | None:
        """The response, or None when the request takes the full path (`request`'s body is then
        the one to run: a persisted document's text is put in it)."""
        content_type = request.headers.get("content-type", "")
        if content_type.partition(";")[0].strip().lower() != "application/json":
            return None
        raw = await request.body()
        try:
            body = view.decode_json(raw)
        except json.JSONDecodeError:
            return None  # the full path answers 400 with the reason
        assert isinstance(body, dict)
        query = body.get("query")
        try:
            digest = self.persisted.requested_hash(body)
            if digest is not None:
                query = self.persisted.text_for(digest, query)
        except PersistedQueryError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        if not isinstance(query, str):
            return None
        prepared = self.documents.get(query)
        if digest is not None:
            if prepared is not None:
                self.persisted.remember(digest, query)
            if body.get("query") is None:
                # The full path reads the text from the body: give it the one the hash stands for.
                request._body = json.dumps({**body, "query": query}).encode()
        variables, operation_name = body.get("variables"), body.get("operationName")
        if (prepared is None or not body.keys() <= _REQUEST_KEYS
                or not (variables is None or isinstance(variables, dict))
                or not (operation_name is None or isinstance(operation_name, str))
                or not isinstance(body.get("extensions", {}), dict)):
            return None
        operation = prepared.operation(operation_name)
        if operation is None or operation[0] is OperationType.SUBSCRIPTION:
            return None
        # A NUL or a lone surrogate can only come from a \u escape in the JSON text (raw control
        # characters and surrogates do not decode): without one there is nothing to look for.
        if variables and b"\\u" in raw and unstorable_variable_refusal(variables) is not None:
            return None  # the full path names the variable
        kind, name = operation
        sub_response = await view.get_sub_response(request)
        context = await view.get_context(request, sub_response)
        context.reads_only = kind is not OperationType.MUTATION
        started, codes = operation_started()
        operation_var.set(f"{kind.value} {name or 'anonymous'}")  # resolvers' log lines carry it
        plan = prepared.plans.get(operation_name) if self.plans_enabled else None
        result: Any = None
        if plan is not None:
            data = await plan.run(context, variables, optimized_is_awaitable)
            if data is not None:
                result = ExecutionResult(data=data)
                self.planned += 1
            else:  # graphql-core answers (with its own errors), from the start, on a fresh context
                sub_response = await view.get_sub_response(request)
                context = await view.get_context(request, sub_response)
                context.reads_only = True
        if result is None:
            result = execute(schema._schema, prepared.document, context_value=context, variable_values=variables,
                             operation_name=operation_name, executor_class=schema.execution_context_class,
                             is_awaitable=cast(Any, optimized_is_awaitable))
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        errors = [shaped_error(with_code(error), context.request_id) for error in result.errors or ()]
        operation_ended(context, kind.value, name, started, codes, errors)
        payload: dict[str, Any] = {"data": result.data}
        if errors:
            payload["errors"] = [error.formatted for error in errors]
        return view.create_response(payload, sub_response)

