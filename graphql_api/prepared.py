"""Documents prepared once per text, for the direct execution path (graphql_api/direct.py).

A client sends the same few documents again and again with different variables. Everything that
depends on the document alone is done once per document text and kept in a bounded LRU: parsing
(with the tokens limit), the query cost limits (graphql_api/query_cost.py), the strings written
in the document (graphql_api/input_text.py), validation with the depth and alias rules, and
which operations it holds. What depends on the request (the caller, the variables, the
operation named) is checked on every request, cached document or not.

Only documents that pass every check are kept: a document that fails one is left to the full
path, which reports the failure exactly as it always has (and caches nothing for it here).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    parse,
    specified_rules,
)
from strawberry.schema.schema import validate_document

from graphql_api.context import Limits
from graphql_api.extensions import validation_rules
from graphql_api.input_text import unstorable_text_refusal
from graphql_api.query_cost import complexity_refusal
from graphql_api.query_plan import QueryPlan, compile_query

__all__ = ["PreparedDocument", "PreparedDocuments", "documents_prepared_max"]

documents_prepared_max = 256  # per server process; a document's AST is bounded by the tokens limit


@dataclass(frozen=True)
class PreparedDocument:
    document: DocumentNode
    # Operation name -> kind; the key None stands for the only operation of a one-operation document.
    operations: dict[str | None, tuple[OperationType, str | None]]
    # The same keys -> the operation's compiled plan, when it has one (graphql_api/query_plan.py).
    plans: dict[str | None, QueryPlan]

    def operation(self, operation_name: str | None) -> tuple[OperationType, str | None] | None:
        """The kind and name of the operation a request runs, or None when the request does not
        name exactly one of the document's operations (the full path reports it)."""
        return self.operations.get(operation_name)


class PreparedDocuments:
    """An LRU of prepared documents keyed by their text; one per app (one event loop: no lock)."""

    def __init__(self, schema: GraphQLSchema, limits: Limits, maxsize: int = documents_prepared_max) -> None:
        self._schema = schema
        self._limits = limits
        self._rules = (*specified_rules, *validation_rules(limits))
        self._maxsize = maxsize
        self._documents: OrderedDict[str, PreparedDocument] = OrderedDict()
        self.prepared = 0  # documents prepared (cache misses that passed every check), for tests

    def get(self, text: str) -> PreparedDocument | None:
        """The prepared document for `text`, or None when it fails any check of the document."""
        found = self._documents.get(text)
        if found is not None:
            self._documents.move_to_end(text)
            return found
        found = self._prepare(text)
        if found is not None:
            self._documents[text] = found
            self.prepared += 1
            if len(self._documents) > self._maxsize:
                self._documents.popitem(last=False)
        return found

    def __contains__(self, text: str) -> bool:
        return text in self._documents

    def _prepare(self, text: str) -> PreparedDocument | None:
        try:
            document = parse(text, max_tokens=self._limits.tokens_max)
        except GraphQLError:
            return None
        if complexity_refusal(document, self._limits) or unstorable_text_refusal(document, None):
            return None
        if validate_document(self._schema, document, self._rules):
            return None
        definitions = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        operations: dict[str | None, tuple[OperationType, str | None]] = {
            d.name.value: (d.operation, d.name.value) for d in definitions if d.name is not None}
        compiled = {d.name.value if d.name else None: compile_query(self._schema, document, d) for d in definitions}
        plans = {name: plan for name, plan in compiled.items() if plan is not None}
        if len(definitions) == 1:
            only = definitions[0]
            operations[None] = (only.operation, only.name.value if only.name else None)
            if only.name is not None and only.name.value in plans:
                plans[None] = plans[only.name.value]
        return PreparedDocument(document, operations, plans)
