"""Custom scalars: `MinorUnits` (money as a decimal string), `DateTime` (with offset), `Date`, `JSON`.

GraphQL's Int is 32-bit and JSON numbers lose precision past 2**53, so amounts cross the API as
strings of minor units, in the one canonical form the core takes (ledger.money.amount_text_problem):
a number, a float, "1e3", " 1", "+1", "0001", "-0", "12\n" all get a clear error naming what was
expected, and a value past 64 bits one saying it is out of range.
A DateTime must carry a UTC offset and lie in the range ledger/instants.py accepts; a Date is
written YYYY-MM-DD (no week date, no basic form) and lies in the days it accepts, so no resolver
meets 0001-01-01 or 9999-12-31, whose business day would overflow.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, NewType, cast

import strawberry
from graphql import StringValueNode, ValueNode
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

from ledger.instants import day_problem, instant_problem
from ledger.money import amount_text_problem

__all__ = ["MinorUnits", "DateTime", "JSON", "InvalidScalar", "SCALAR_MAP", "parse_minor_units",
           "parse_datetime", "parse_date", "json_object"]

datetime_length_max = 64
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class InvalidScalar(ValueError):
    """A scalar input was malformed; graphql-core reports it as a variable or literal error."""


def parse_minor_units(value: object) -> int:
    if not isinstance(value, str):
        raise InvalidScalar(
            f"MinorUnits must be a string of decimal digits such as \"-12345\", got {type(value).__name__}"
        )
    problem = amount_text_problem(value)
    if problem is not None:
        raise InvalidScalar(f"MinorUnits {problem}, got {value[:40]!r}")
    return int(value)


def _serialize_minor_units(value: int) -> str:
    assert isinstance(value, int) and not isinstance(value, bool), f"MinorUnits from {value!r}"
    return str(value)


def _literal_minor_units(node: ValueNode, _variables: Any = None) -> int:
    if not isinstance(node, StringValueNode):
        raise InvalidScalar("MinorUnits must be a string of decimal digits such as \"-12345\", not a number")
    return parse_minor_units(node.value)


def parse_datetime(value: object) -> datetime:
    if not isinstance(value, str) or len(value) > datetime_length_max:
        raise InvalidScalar("DateTime must be an ISO 8601 string such as 2026-01-31T09:30:00+08:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidScalar(f"DateTime must be ISO 8601 such as 2026-01-31T09:30:00+08:00, got {value!r}") from None
    problem = instant_problem(parsed)
    if problem is not None:
        raise InvalidScalar(f"DateTime {value!r} is not accepted: {problem}")
    return parsed


def _serialize_datetime(value: datetime) -> str:
    assert value.tzinfo is not None, "DateTime values leaving the API carry an offset"
    return value.isoformat()


def _literal_datetime(node: ValueNode, _variables: Any = None) -> datetime:
    if not isinstance(node, StringValueNode):
        raise InvalidScalar("DateTime must be an ISO 8601 string")
    return parse_datetime(node.value)


def parse_date(value: object) -> date:
    if not isinstance(value, str) or not _DATE_TEXT.fullmatch(value):
        shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
        raise InvalidScalar(f"Date must be written YYYY-MM-DD such as 2026-01-31, got {shown}")
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise InvalidScalar(f"Date {value!r} is not a day of the calendar") from None
    problem = day_problem(parsed)
    if problem is not None:
        raise InvalidScalar(f"Date {value!r} is not accepted: {problem}")
    return parsed


def _serialize_date(value: date) -> str:
    assert isinstance(value, date) and not isinstance(value, datetime), f"Date from {value!r}"
    return value.isoformat()


def _literal_date(node: ValueNode, _variables: Any = None) -> date:
    if not isinstance(node, StringValueNode):
        raise InvalidScalar("Date must be a string written YYYY-MM-DD")
    return parse_date(node.value)


MinorUnits = NewType("MinorUnits", int)
DateTime = NewType("DateTime", datetime)

_MINOR_UNITS_SCALAR = strawberry.scalar(
    name="MinorUnits",
    description='An integer amount of minor units (fen for CNY) as a decimal string, e.g. "-12345".',
    serialize=_serialize_minor_units,
    parse_value=parse_minor_units,
    parse_literal=_literal_minor_units,
)

_DATETIME_SCALAR = strawberry.scalar(
    name="DateTime",
    description="An ISO 8601 date and time with a UTC offset, e.g. 2026-01-31T09:30:00+08:00.",
    serialize=_serialize_datetime,
    parse_value=parse_datetime,
    parse_literal=_literal_datetime,
)

_DATE_SCALAR = strawberry.scalar(
    name="Date",
    description="A calendar day written YYYY-MM-DD, e.g. 2026-01-31 (a business day where it dates an operation).",
    serialize=_serialize_date,
    parse_value=parse_date,
    parse_literal=_literal_date,
)

# For StrawberryConfig(scalar_map=...): fields annotated with plain `datetime` get the same
# offset-checking scalar as those annotated `DateTime`, so object types built from the core's rows
# take its datetimes as they are (arguments and inputs say `DateTime`); plain `date` gets the
# checked `Date` in place of strawberry's own, which takes week dates and years up to 9999.
SCALAR_MAP: dict[object, ScalarDefinition] = {
    MinorUnits: _MINOR_UNITS_SCALAR, DateTime: _DATETIME_SCALAR, datetime: _DATETIME_SCALAR,
    date: _DATE_SCALAR}


def json_object(value: JSON | None) -> dict[str, Any]:
    """A JSON input as the object the core takes, {} when absent. The scalar admits any JSON value;
    the cast leaves the check to the core, which refuses anything but an object with a
    ValidationError naming the field."""
    return {} if value is None else cast("dict[str, Any]", value)
