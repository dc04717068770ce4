"""Every string a client sends passes here before validation: the variables as decoded from
JSON (keys and values, at any depth) and the string literals written in the document. A string
the database cannot store (ledger/text.py: a NUL, a lone surrogate) is refused with a VALIDATION
error naming where it was, so no resolver, scalar or core function meets one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import chain
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLError,
    Node,
    ObjectFieldNode,
    StringValueNode,
    VariableDefinitionNode,
)

from ledger.text import unstorable_character

__all__ = ["unstorable_text_refusal", "unstorable_variable_refusal"]


def unstorable_text_refusal(document: DocumentNode, variables: Mapping[str, Any] | None) -> GraphQLError | None:
    """A VALIDATION error for the first string the database cannot store, else None."""
    return _first_refusal(chain(_variable_strings(variables or {}), _literal_strings(document)))


def unstorable_variable_refusal(variables: Mapping[str, Any]) -> GraphQLError | None:
    """The same for the variables alone (a prepared document's own strings were checked once)."""
    return _first_refusal(_variable_strings(variables))


def _first_refusal(strings: Iterator[tuple[str, str, bool]]) -> GraphQLError | None:
    for field, text, is_key in strings:
        character = unstorable_character(text)
        if character is not None:
            what = f"a key of {field}" if is_key else field
            return GraphQLError(f"{what} contains {character}, which cannot be stored",
                                extensions={"code": "VALIDATION", "field": field})
    return None


def _variable_strings(variables: Mapping[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(path, string, is a key) for every key and string value; iterative, so depth costs no
    stack. A key is checked before any path that contains it, so a reported path is printable."""
    pending: list[tuple[str, Any]] = [("", variables)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            yield path, value, False
        elif isinstance(value, Mapping):
            for key, item in value.items():
                yield path or "variables", str(key), True
                pending.append((f"{path}.{key}" if path else f"${key}", item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))


def _literal_strings(document: DocumentNode) -> Iterator[tuple[str, str, bool]]:
    """(argument path, string) for every string literal in the document (arguments, defaults)."""
    pending: list[tuple[str, Node]] = [("", definition) for definition in document.definitions]
    while pending:
        path, node = pending.pop()
        if isinstance(node, StringValueNode):
            yield path or "argument", node.value, False
            continue
        if isinstance(node, (ArgumentNode, ObjectFieldNode)):
            path = f"{path}.{node.name.value}" if path else node.name.value
        elif isinstance(node, VariableDefinitionNode):
            path = f"${node.variable.name.value}"
        for key in node.keys:
            child = getattr(node, key, None)
            if isinstance(child, Node):
                pending.append((path, child))
            elif isinstance(child, tuple | list):
                pending.extend((path, item) for item in child if isinstance(item, Node))
