"""Opaque keyset cursors: url-safe base64 of a small JSON object, signed when the server trusts it.

A cursor names a position (never an offset), so a page costs the same at any depth. A malformed
cursor is a ValidationError, never a server error.

A cursor that carries something the server uses without checking it again (a statement's running
balance) is signed: `sign_cursor` appends an HMAC-SHA256 tag over the payload and a `binding`
naming what the cursor pages (the account and period), and `open_signed_cursor` checks the tag in
constant time before it reads anything from the payload. So an edited cursor, or one replayed on
another account or period, is refused. The key is `ledger.cursor_keys.cursor_key`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from ledger.epoch import from_epoch_us
from ledger.errors import ValidationError
from ledger.instants import instant_problem
from ledger.text import unstorable_character

__all__ = ["encode_cursor", "decode_cursor", "instant_of_micros", "sign_cursor", "open_signed_cursor"]

cursor_length_max = 1000
_bigint_max = 2**63 - 1
# 128 bits of tag: a forger must guess it outright, as there is no oracle beyond "refused".
_TAG_BYTES = 16
_SEPARATOR = "."


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _not_issued(field: str) -> ValidationError:
    return ValidationError(f"{field} is not a cursor this API issued", field=field)


def _check_text(cursor: object, field: str) -> str:
    if not isinstance(cursor, str) or not 0 < len(cursor) <= cursor_length_max:
        raise _not_issued(field)
    return cursor


def decode_cursor(cursor: str, *, fields: dict[str, type], field: str = "after") -> dict[str, Any]:
    """Decode and check that the cursor has exactly `fields` with the given types."""
    text = _check_text(cursor, field)
    try:
        padded = text + "=" * (-len(text) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _not_issued(field) from None
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


def _tag(key: bytes, binding: str, payload: str) -> bytes:
    # The binding and the payload are joined by a byte neither can hold, so no pair of them
    # signs the same message as another.
    message = b"ledger cursor\x00" + binding.encode() + b"\x00" + payload.encode()
    tag = hmac.new(key, message, hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.urlsafe_b64encode(tag).rstrip(b"=")


def sign_cursor(position: dict[str, Any], *, key: bytes, binding: str) -> str:
    """A cursor for `position` that only `open_signed_cursor` with the same key and binding accepts."""
    payload = encode_cursor(position)
    return payload + _SEPARATOR + _tag(key, binding, payload).decode()


def open_signed_cursor(cursor: str, *, fields: dict[str, type], key: bytes, binding: str,
                       field: str = "after") -> dict[str, Any]:
    """The position in a cursor `sign_cursor` made with this key and binding; else a ValidationError."""
    payload, separator, tag = _check_text(cursor, field).rpartition(_SEPARATOR)
    if not separator or not hmac.compare_digest(_tag(key, binding, payload), tag.encode()):
        raise ValidationError(f"{field} is not a cursor this API issued for this list", field=field)
    return decode_cursor(payload, fields=fields, field=field)
