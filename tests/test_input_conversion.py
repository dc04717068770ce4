"""The posting inputs, converted once-planned (graphql_api/input_conversion.py), are the values
strawberry's own conversion builds, for every field set or left out; and over HTTP a posting
with every optional field stores each of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from book import BANK, WALLET_U1, open_book
from strawberry.types.arguments import convert_argument
from test_graphql_mutations import POST, transfer

from graphql_api.core.inputs import EntryInput
from graphql_api.core.transaction_post import PostTransactionInput
from graphql_api.core.types import Side
from graphql_api.schema import schema

ENTRIES = [{"accountCode": BANK, "side": Side.DEBIT, "amount": 5},
           {"accountCode": WALLET_U1, "side": Side.CREDIT, "amount": 5}]


def strawberry_and_planned(value):
    """(strawberry's value, the planned value) for a PostTransactionInput."""
    registry, config = schema.schema_converter.scalar_registry, schema.config
    planned = convert_argument(value, PostTransactionInput, registry, config)
    saved = (PostTransactionInput.__strawberry_definition__.from_input, EntryInput.__strawberry_definition__.from_input)
    try:
        PostTransactionInput.__strawberry_definition__.from_input = None
        EntryInput.__strawberry_definition__.from_input = None
        plain = convert_argument(value, PostTransactionInput, registry, config)
    finally:
        PostTransactionInput.__strawberry_definition__.from_input, EntryInput.__strawberry_definition__.from_input = saved
    return plain, planned


@pytest.mark.parametrize("extra", [
    {},
    {"description": "rent"},
    {"description": "rent", "effectiveAt": datetime(2025, 1, 2, tzinfo=UTC), "metadata": {"a": [1, {"b": None}]}},
    {"effectiveAt": None, "metadata": None},
], ids=["required only", "description", "every field", "explicit nulls"])
def test_the_planned_conversion_builds_what_strawberry_builds(extra):
    assert PostTransactionInput.__strawberry_definition__.from_input is not None
    value = {"idempotencyKey": "k", "kind": "wallet.top_up", "entries": ENTRIES, **extra}
    plain, planned = strawberry_and_planned(value)
    assert planned == plain
    assert type(planned.entries[0]) is EntryInput and planned.entries[0].side is Side.DEBIT
    assert planned.entries is not value["entries"]


def test_over_http_every_optional_field_arrives(api, conn):
    open_book(conn)
    body = transfer("all-fields", [(BANK, "DEBIT", 7), (WALLET_U1, "CREDIT", 7)], description="rent",
                    effectiveAt="2025-01-02T03:04:05Z", metadata={"order": "A-1", "lines": [1, 2]})
    posted = api.data(POST, body, role="operator")["postTransaction"]["transaction"]
    assert posted["description"] == "rent" and posted["metadata"] == {"order": "A-1", "lines": [1, 2]}
    assert posted["effectiveAt"].startswith("2025-01-02T03:04:05")
    assert [(e["side"], e["amount"]["amount"]) for e in posted["entries"]] == [("DEBIT", "7"), ("CREDIT", "7")]


def test_every_argument_is_named_once_as_strawberry_would_name_it():
    from graphql import GraphQLObjectType
    from strawberry.schema.name_converter import NameConverter
    from strawberry.types.base import StrawberryObjectDefinition

    from graphql_api.input_conversion import name_arguments_once

    derived = NameConverter()  # strawberry's own rule, on a converter that never saw the schema
    arguments = [argument for concrete in schema.schema_converter.type_map.values()
                 if isinstance(concrete.definition, StrawberryObjectDefinition)
                 for field in concrete.definition.fields for argument in field.arguments]
    assert len(arguments) > 100
    assert all(argument.graphql_name is not None for argument in arguments)
    assert all(argument.graphql_name == derived.apply_naming_config(argument.python_name)
               for argument in arguments if argument.python_name not in ("from_",))
    assert name_arguments_once(schema) == 0  # done once, when the schema was built
    # The names graphql-core serves are the same ones, argument for argument.
    served = {(type_name, field_name, name) for type_name, type_ in schema._schema.type_map.items()
              if isinstance(type_, GraphQLObjectType) and not type_name.startswith("__")
              for field_name, field in type_.fields.items() for name in field.args}
    assert {(concrete.definition.name, derived.apply_naming_config(field.python_name) if field.graphql_name is None
             else field.graphql_name, argument.graphql_name)
            for concrete in schema.schema_converter.type_map.values()
            if isinstance(concrete.definition, StrawberryObjectDefinition) and not concrete.definition.is_input
            for field in concrete.definition.fields for argument in field.arguments} <= served
