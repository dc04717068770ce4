"""Checking what a caller filters by before a query sees it: a JSON object for containment
(`metadata @> filter`), and a half-open time range.

A filter is read by an index (sql/0098_finding_indexes.sql), so what a caller may send is
bounded: a containment object is at most `containment_bytes_max` bytes of JSON and nests at most
`containment_depth_max` levels, holds only text the database can store, and a range's start lies
before its end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ledger.errors import ValidationError
from ledger.instants import check_instant
from ledger.text import unstorable_character

__all__ = ["containment_bytes_max", "containment_depth_max", "check_containment", "check_range"]

containment_bytes_max = 4_096
containment_depth_max = 8


def check_containment(value: object, field: str) -> dict[str, Any]:
    """`value` as the JSON object a containment filter compares with; else a ValidationError."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be a JSON object", field=field)
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:  # iterative: a deep value costs no stack
        item, depth = pending.pop()
        if isinstance(item, Mapping | list) and depth > containment_depth_max:
            raise ValidationError(f"{field} nests deeper than {containment_depth_max} levels", field=field)
        if isinstance(item, Mapping):
            for key, child in item.items():
                _check_string(key, field)
                pending.append((child, depth + 1))
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_string(item, field)
        elif item is not None and not isinstance(item, bool | int | float):
            raise ValidationError(f"{field} must be JSON", field=field)
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{field} must be JSON: {exc}", field=field) from None
    if len(text.encode()) > containment_bytes_max:
        raise ValidationError(f"{field} is longer than {containment_bytes_max} bytes of JSON", field=field)
    return dict(json.loads(text))


def _check_string(text: object, field: str) -> None:
    if not isinstance(text, str):
        raise ValidationError(f"{field} must be a JSON object with text keys", field=field)
    character = unstorable_character(text)
    if character is not None:
        raise ValidationError(f"{field} contains {character}, which cannot be stored", field=field)


def check_range(start: datetime | None, end: datetime | None, start_field: str,
                end_field: str) -> tuple[datetime | None, datetime | None]:
    """[start, end) with each bound an accepted instant and start before end."""
    if start is not None:
        check_instant(start, start_field)
    if end is not None:
        check_instant(end, end_field)
    if start is not None and end is not None and start >= end:
        raise ValidationError(f"{start_field} must lie before {end_field} (the range is [from, to))",
                              field=start_field)
    return start, end
