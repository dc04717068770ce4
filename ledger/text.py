"""Text the database can store. PostgreSQL refuses the NUL character in text and jsonb, and a
lone UTF-16 surrogate (U+D800 to U+DFFF, which JSON's \\ud800 escape can produce) has no UTF-8
encoding, so psycopg cannot send it. Every string from a caller is checked here first.

A label (an account's or a fund's name, a transaction's description, a holder id) is also printed:
on statements, PDFs, the auditor's page and the command line's one-record-a-line output. It is one
line, with no control character, and no direction override or isolate (U+202A to U+202E, U+2066 to
U+2069), which would make a printed name read as something else.
"""

from __future__ import annotations

import re
import unicodedata

from ledger.errors import ValidationError

__all__ = ["unstorable_character", "check_text", "check_label"]

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_DIRECTION_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Control characters (Cc: NUL, tab, CR, LF ...) and the line and paragraph separators.
_NOT_IN_A_LABEL = frozenset({"Cc", "Zl", "Zp"})


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


def check_label(value: str, field: str) -> str:
    """`value` if it is storable text that prints as itself on one line, else a ValidationError
    naming `field` and the first character at fault."""
    check_text(value, field)
    for character in value:
        if unicodedata.category(character) in _NOT_IN_A_LABEL or _DIRECTION_CONTROLS.fullmatch(character):
            raise ValidationError(f"{field} contains U+{ord(character):04X}, a control character, line break or "
                                  f"direction override, which would not print as written", field=field)
    return value
