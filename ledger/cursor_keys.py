"""The key that signs cursors (docs/design.md, "Cursors").

`LEDGER_CURSOR_KEY` (hex or base64, at least 16 bytes) when set, so that several databases or a
key rotation can be managed outside; else the random key the migration stored in
`ledger.cursor_key`, which every process of a deployment reads alike and restarts keep.
"""

from __future__ import annotations

import base64
import binascii
import weakref
from typing import Any

import psycopg

from ledger.errors import ValidationError
from ledger.settings import current

__all__ = ["cursor_key", "key_env_var", "key_bytes_min", "parse_key"]

key_env_var = "LEDGER_CURSOR_KEY"
key_bytes_min = 16

# The stored key never changes (the table is append-only), so each connection reads it once.
_stored: weakref.WeakKeyDictionary[psycopg.Connection[Any], bytes] = weakref.WeakKeyDictionary()


def parse_key(text: str) -> bytes:
    """The key written as hex or as (url-safe or standard) base64."""
    cleaned = text.strip()
    try:
        key = bytes.fromhex(cleaned)
    except ValueError:
        try:
            key = base64.b64decode(cleaned.replace("-", "+").replace("_", "/") + "=" * (-len(cleaned) % 4),
                                   validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(f"{key_env_var} must be hex or base64", field=key_env_var) from None
    if len(key) < key_bytes_min:
        raise ValidationError(f"{key_env_var} must hold at least {key_bytes_min} bytes, got {len(key)}",
                              field=key_env_var)
    return key


def cursor_key(conn: psycopg.Connection[Any]) -> bytes:
    configured = current("cursor_key")  # the variable, else the settings file's cursor_key
    if configured:
        return parse_key(configured)
    key = _stored.get(conn)
    if key is None:
        row = conn.execute("select key from ledger.cursor_key").fetchone()
        if row is None:
            raise ValidationError("ledger.cursor_key is empty: migrate the database", field=key_env_var)
        key = _stored[conn] = bytes(row[0])
    return key
