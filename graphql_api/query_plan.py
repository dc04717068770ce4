"""Compiled plans for plain prepared queries: run without graphql-core's generic executor.

Profiled on the direct path (graphql_api/direct.py), graphql-core's executor (building it,
collecting each object's fields, completing each value through its generic dispatch) cost about a
third of a balance query's CPU, more than the resolvers it calls. For the plainest documents the
work it does per request is the same every time, so it is worked out once per prepared document:

A query operation gets a plan when every selection in it is a field (no fragments, no
directives), no response key appears twice at one level, no field is an introspection field, and
every field's type is a scalar, an enum or an object type, nullable or not: no lists, unions or
interfaces. The plan calls the same resolvers graphql-core would, with the arguments graphql-core's
own coercion gives (`get_argument_values`) and the same resolve info strawberry's execution
context builds; it completes leaves with graphql-core's own `complete_leaf_value` and checks
objects with their `is_type_of`, and builds the response's data in selection order.

Errors are always graphql-core's own: anything that would be one (variables that do not coerce,
a resolver raising or returning an error, a null where the schema says non-null, a leaf that
does not serialize, an object of the wrong type) stops the plan, and the caller runs the request
on graphql-core from the start with a fresh context. Only queries get plans: running a query
again writes nothing. tests/test_query_plan.py compares the two paths on many documents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)
from graphql.execution.executor import Executor
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.pyutils import Path
from strawberry.schema.schema import _OperationContextAwareGraphQLResolveInfo

__all__ = ["QueryPlan", "compile_query", "max_coercion_errors"]

max_coercion_errors = 50  # graphql-core's default: a plan stops on any, so the count only matters there


class _Stop(Exception):
    """The plan cannot answer this request without an error: graphql-core answers it."""


@dataclass(frozen=True, slots=True)
class _Field:
    key: str  # the response key (alias or name)
    name: str
    nodes: list[FieldNode]
    definition: GraphQLField
    parent_type: GraphQLObjectType
    non_null: bool
    leaf: GraphQLScalarType | GraphQLEnumType | None  # None: an object type
    object_type: GraphQLObjectType | None
    resolve: Callable[..., Any]
    basic: bool  # strawberry's attribute resolver, which reads neither info nor arguments
    has_arguments: bool
    children: tuple[_Field, ...]


def compile_query(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode) -> QueryPlan | None:
    """The plan for a query operation of a validated document, or None when it does not qualify."""
    if operation.operation is not OperationType.QUERY or operation.directives:
        return None
    if any(definition is not operation for definition in document.definitions):
        return None  # fragments, or other operations: leave them to graphql-core
    if any(variable.directives for variable in operation.variable_definitions or ()):
        return None
    root = schema.query_type
    if root is None:
        return None
    fields = _fields(schema, root, operation.selection_set)
    return None if fields is None else QueryPlan(schema, document, operation, fields)


def _fields(schema: GraphQLSchema, parent: GraphQLObjectType, selection_set: SelectionSetNode) -> tuple[_Field, ...] | None:
    fields: list[_Field] = []
    keys: set[str] = set()
    for node in selection_set.selections:
        if not isinstance(node, FieldNode) or node.directives:
            return None
        name = node.name.value
        key = node.alias.value if node.alias else name
        definition = parent.fields.get(name)
        if name.startswith("__") or key in keys or definition is None or definition.resolve is None:
            return None
        keys.add(key)
        declared = definition.type
        non_null = isinstance(declared, GraphQLNonNull)
        named = declared.of_type if isinstance(declared, GraphQLNonNull) else declared
        children: tuple[_Field, ...] | None = ()
        if isinstance(named, (GraphQLScalarType, GraphQLEnumType)):
            if node.selection_set is not None:
                return None
            leaf, object_type = named, None
        elif isinstance(named, GraphQLObjectType) and node.selection_set is not None:
            leaf, object_type = None, named
            children = _fields(schema, named, node.selection_set)
        else:
            return None  # a list, a union or an interface
        if children is None:
            return None
        fields.append(_Field(key, name, [node], definition, parent, non_null, leaf, object_type, definition.resolve,
                             bool(getattr(definition.resolve, "_is_default", False)),
                             bool(definition.args or node.arguments), children))
    return tuple(fields)


class QueryPlan:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode,
                 fields: tuple[_Field, ...]) -> None:
        self.schema = schema
        self.document = document
        self.operation = operation
        self.fields = fields

    async def run(self, context: Any, raw_variables: dict[str, Any] | None,
                  is_awaitable: Callable[[Any], bool]) -> dict[str, Any] | None:
        """The response's data, or None when graphql-core must answer (see the module docstring)."""
        variables = get_variable_values(self.schema, self.operation.variable_definitions or (), raw_variables or {},
                                        max_errors=max_coercion_errors)
        if isinstance(variables, list):
            return None
        run = _Run(self, context, variables, is_awaitable)
        try:
            return await run.object_value(self.fields, None, None)
        except Exception:  # noqa: BLE001 - any error is graphql-core's to report
            return None


class _Run:
    __slots__ = ("plan", "context", "variables", "is_awaitable")

    def __init__(self, plan: QueryPlan, context: Any, variables: Any, is_awaitable: Callable[[Any], bool]) -> None:
        self.plan = plan
        self.context = context
        self.variables = variables
        self.is_awaitable = is_awaitable

    async def object_value(self, fields: tuple[_Field, ...], source: Any, path: Path | None) -> dict[str, Any]:
        data: dict[str, Any] = {}
        pending: list[tuple[str, Awaitable[Any]]] = []
        try:
            for field in fields:
                value = self.field_value(field, source, path)
                data[field.key] = value  # placeholder for an awaitable: keeps the selection's order
                if self.is_awaitable(value):
                    pending.append((field.key, value))
        except BaseException:
            for _, awaitable in pending:  # made but never to be awaited
                if asyncio.iscoroutine(awaitable):
                    awaitable.close()
            raise
        if len(pending) == 1:
            key, awaitable = pending[0]
            data[key] = await awaitable
        elif pending:
            # All run to their end before a failure is acted on: none is left running behind.
            results = await asyncio.gather(*(awaitable for _, awaitable in pending), return_exceptions=True)
            for (key, _), result in zip(pending, results, strict=True):
                if isinstance(result, BaseException):
                    raise _Stop() from result
                data[key] = result
        return data

    def field_value(self, field: _Field, source: Any, parent_path: Path | None) -> Any:
        """The completed value, or an awaitable of it."""
        path = Path(parent_path, field.key, field.parent_type.name)
        if field.basic:
            return self.complete(field, field.resolve(source, None), None, path)
        info = _OperationContextAwareGraphQLResolveInfo(
            field.name, field.nodes, field.definition.type, field.parent_type, path, self.plan.schema, {}, None,
            self.plan.operation, self.variables.coerced, self.context, self.is_awaitable, None, None,
            None)  # type: ignore[arg-type]  # strawberry passes the operation_extensions it was given: none
        arguments = get_argument_values(field.definition, field.nodes[0], self.variables) if field.has_arguments else {}
        result = field.resolve(source, info, **arguments)
        if self.is_awaitable(result):
            return self.complete_later(field, result, info, path)
        return self.complete(field, result, info, path)

    async def complete_later(self, field: _Field, result: Awaitable[Any], info: Any, path: Path) -> Any:
        completed = self.complete(field, await result, info, path)
        return await completed if self.is_awaitable(completed) else completed

    def complete(self, field: _Field, result: Any, info: Any, path: Path) -> Any:
        if isinstance(result, Exception):
            raise _Stop()
        if result is None:
            if field.non_null:
                raise _Stop()
            return None
        if field.leaf is not None:
            return Executor.complete_leaf_value(field.leaf, result)  # raises for what does not serialize
        object_type = field.object_type
        assert object_type is not None
        if object_type.is_type_of is not None:
            matches = object_type.is_type_of(result, info)
            if self.is_awaitable(matches) or not matches:
                raise _Stop()
        return self.object_value(field.children, result, path)
