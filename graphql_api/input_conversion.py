"""Cheaper conversion of hot input types: the plan strawberry works out on every request, made once.

For every input object in every request, strawberry's `convert_argument` resolves each field's
type annotation and converts its GraphQL name again; profiled under load, that was about a
quarter of the server's CPU for a `postTransaction` of two legs. `converted_once` gives an input
type a `from_input` (strawberry's hook for types that build their own value) that works out,
on first use, per field: its GraphQL name, its Python name, and whether its value is a leaf
(a scalar or an enum, which graphql-core has already parsed and strawberry passes through
unchanged) or a list of leaves; every other field (a nested input, a list of them) is converted
by strawberry itself, so an input nested in it with its own `from_input` uses that. The values
built are the same strawberry builds; tests/test_input_conversion.py compares them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any, TypeVar

from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition

__all__ = ["converted_once", "name_arguments_once"]

C = TypeVar("C", bound=type)
# (GraphQL name, Python name, how to convert the value: None when it passes as it is)
_Plan = list[tuple[str, str, Callable[[Any, InputContext, str], Any] | None]]


def converted_once(cls: C) -> C:
    """Decorates a `@strawberry.input` class (applied after it)."""
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    plan: _Plan | None = None
    defaults: dict[str, None] = {}

    def from_input(type_: type, value: Mapping[str, Any], context: InputContext) -> Any:
        nonlocal plan, defaults
        if plan is None:
            plan = _plan(definition, context)
            # As strawberry does: a field with no default is None until the value sets it.
            defaults = {field.python_name: None for field in definition.fields
                        if field.default_value is MISSING and field.default_factory is MISSING}
        kwargs: dict[str, Any] = dict(defaults)
        for graphql_name, python_name, convert in plan:
            if graphql_name in value:
                item = value[graphql_name]
                kwargs[python_name] = item if convert is None or item is None else convert(item, context, graphql_name)
        return type_(**kwargs)

    definition.from_input = from_input
    return cls


def _plan(definition: Any, context: InputContext) -> _Plan:
    plan: _Plan = []
    for field in definition.fields:
        type_ = field.resolve_type(type_definition=definition)
        plan.append((context.config.name_converter.from_field(field), field.python_name,
                     _converter(type_, context.scalar_registry)))
    return plan


def _is_leaf(type_: Any, scalar_registry: Mapping[object, Any]) -> bool:
    if isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    if isinstance(type_, StrawberryEnumDefinition) or has_enum_definition(type_):
        return True
    return not has_object_definition(type_) and not isinstance(type_, StrawberryList) and is_scalar(
        type_, scalar_registry)


def _converter(type_: Any, scalar_registry: Mapping[object, Any]) -> Callable[[Any, InputContext, str], Any] | None:
    if isinstance(type_, StrawberryMaybe):  # wrapped in Some: strawberry's own conversion
        return lambda value, context, key: context.convert(value, type_, key)
    optional = isinstance(type_, StrawberryOptional)
    inner = type_.of_type if optional else type_
    if _is_leaf(inner, scalar_registry):
        return None
    if isinstance(inner, StrawberryList) and _is_leaf(inner.of_type, scalar_registry):
        # Copied, as strawberry does: graphql-core may hand every request the same default list.
        return lambda value, context, key: list(value)
    return lambda value, context, key: context.convert(value, type_, key)


def name_arguments_once(schema: Any) -> int:
    """Give every field argument its GraphQL name once: strawberry works it out (camel case from
    the Python name) for every argument of every resolver call when it is not given. The names are
    the ones strawberry would derive, so the schema does not change. Returns how many were named."""
    named = 0
    converter = schema.config.name_converter
    for concrete in schema.schema_converter.type_map.values():
        definition = concrete.definition
        if not isinstance(definition, StrawberryObjectDefinition):
            continue
        for field in definition.fields:
            arguments = list(field.arguments)
            if field.base_resolver is not None:
                arguments += field.base_resolver.arguments
            for argument in arguments:
                if argument.graphql_name is None:
                    argument.graphql_name = converter.from_argument(argument)
                    named += 1
    return named
