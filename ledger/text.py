"""Text the database can store. PostgreSQL refuses the NUL character in text and jsonb, and a
lone UTF-16 surrogate (U+D800 to U+DFFF, which JSON's \\ud800 escape can produce) has no UTF-8
encoding, so psycopg cannot send it. Every string from a caller is checked here first.
"""

from __future__ import annotations

import re

from ledger.errors import ValidationError

__all__ = ["unstorable_character", "check_text"]

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_character(value: str) -> str | None:
    """The first character of `value` the database cannot store, as U+XXXX, or None."""
    found = _UNSTORABLE.search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


def check_text(value: str, field: str) -> str:
    """`value` if the database can store it, else a ValidationError naming `field`."""
    character = unstorable_character(value)
    if character is not None:
        raise ValidationError(f"{field} contains {character}, which cannot be stored", field=field)
    return value
