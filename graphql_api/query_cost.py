"""What a document may ask of validation, counted before validation runs.

graphql-core's OverlappingFieldsCanBeMerged compares every pair of fields that share a response
name at one level, and for each pair, every pair of their sub-fields sharing a name: the fields
that end up at one response path are compared pairwise, so a few kilobytes repeating one field
hundreds of times (or ten fields each repeating one sub-field ten times) cost seconds of CPU on
the event loop. The tokens limit bounds the document's size, not that product. This walk follows
the fields by response path, fragments expanded, as the rule and execution see them, and bounds
in linear time: fields in all, selections merged at one path, and fields sharing one path.
Past a limit the request gets a QUERY_TOO_COMPLEX error and is never validated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from graphql_api.context import Limits

__all__ = ["complexity_refusal", "too_complex_code"]

too_complex_code = "QUERY_TOO_COMPLEX"


def complexity_refusal(document: DocumentNode, limits: Limits) -> GraphQLError | None:
    """A QUERY_TOO_COMPLEX error when `document` passes one of the limits, else None."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    # A path is the selection sets of every field found at one response path; fragment
    # definitions are paths of their own, since the rule checks them on their own too.
    paths: list[list[SelectionSetNode]] = [[d.selection_set] for d in document.definitions
                                           if isinstance(d, (OperationDefinitionNode, FragmentDefinitionNode))]
    fields = 0
    while paths:
        below: dict[str, list[SelectionSetNode]] = {}
        names: Counter[str] = Counter()
        for selection_set in paths.pop():
            for field in _fields(selection_set, fragments):
                fields += 1
                if fields > limits.fields_max:
                    return _refusal(f"more than {limits.fields_max} fields (fragments expanded)", "fieldsMax")
                name = (field.alias or field.name).value
                names[name] += 1
                if names[name] > limits.duplicate_selections_max:
                    return _refusal(f"{name!r} is selected more than {limits.duplicate_selections_max} times at "
                                    "one path", "duplicateSelectionsMax")
                if len(names) > limits.selections_per_level_max:
                    return _refusal(f"more than {limits.selections_per_level_max} fields at one path",
                                    "selectionsPerLevelMax")
                if field.selection_set is not None:
                    below.setdefault(name, []).append(field.selection_set)
        paths.extend(below.values())
    return None


def _fields(selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]) -> Iterator[FieldNode]:
    """The fields `selection_set` selects at its own level: its own, and those of the inline
    fragments and fragments spread into it (each fragment once); lazily, so a refusal stops early."""
    spread: set[str] = set()
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in spread:
                spread.add(selection.name.value)
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    pending.append(fragment.selection_set)


def _refusal(what: str, limit: str) -> GraphQLError:
    return GraphQLError(f"query too complex: {what}; ask for less in one request",
                        extensions={"code": too_complex_code, "limit": limit})
