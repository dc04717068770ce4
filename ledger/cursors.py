"""Opaque keyset cursors: url-safe base64 of a small JSON object.

A cursor names a position (never an offset), so a page costs the same at any depth. A malformed
cursor is a ValidationError, never a server error.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from ledger.epoch import from_epoch_us
from ledger.errors import ValidationError
from ledger.instants import instant_problem
from ledger.text import unstorable_character

__all__ = ["encode_cursor", "decode_cursor", "instant_of_micros"]

cursor_length_max = 1000
_bigint_max = 2**63 - 1


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, fields: dict[str, type], field: str = "after") -> dict[str, Any]:
    """Decode and check that the cursor has exactly `fields` with the given types."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= cursor_length_max:
        raise ValidationError(f"{field} is not a cursor this API issued", field=field)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError(f"{field} is not a cursor this API issued", field=field) from None
    if not isinstance(position, dict) or set(position) != set(fields):
        raise ValidationError(f"{field} is not a cursor for this list", field=field)
    for name, kind in fields.items():
        value = position[name]
        if isinstance(value, bool) or not isinstance(value, kind) or not _storable(value):
            raise ValidationError(f"{field} is not a cursor for this list", field=field)
    return position


def _storable(value: object) -> bool:
    """A forged cursor may carry what no issued one does: an int past 64 bits, a NUL."""
    if isinstance(value, int):
        return -_bigint_max <= value <= _bigint_max
    return not isinstance(value, str) or unstorable_character(value) is None


def instant_of_micros(micros: int, *, field: str = "after") -> datetime:
    """The instant a cursor carries as microseconds since 1970 (UTC); a forged one outside the
    accepted range (ledger/instants.py) is refused like any other forged cursor."""
    try:
        instant = from_epoch_us(micros)
    except OverflowError:
        raise ValidationError(f"{field} is not a cursor this API issued", field=field) from None
    if instant_problem(instant) is not None:
        raise ValidationError(f"{field} is not a cursor this API issued", field=field)
    return instant
