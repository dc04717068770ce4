"""Files an operator names on the command line: read whole but never more than a bound; output
files opened before the work, so a path that cannot be written stops the command first.

The bound is checked while reading, not from the file's size: a device (`/dev/zero`), a pipe or a
file still growing has no size to trust, and reading it whole would never end or fill the memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from ledger.errors import ValidationError

__all__ = ["read_bounded", "open_output"]


def read_bounded(path: Path, bytes_max: int, *, field: str) -> bytes:
    """The file's bytes; a ValidationError naming `field` when it cannot be read (missing, a
    directory, not permitted) or holds more than `bytes_max` bytes."""
    try:
        with path.open("rb") as stream:
            data = stream.read(bytes_max + 1)
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}", field=field) from None
    if len(data) > bytes_max:
        raise ValidationError(f"{path} holds more than {bytes_max:,} bytes, the most accepted", field=field)
    return data


def open_output(path: Path, *, field: str) -> BinaryIO:
    """The file to write a command's output to, opened (created or emptied) before the command
    does its work: a path that cannot be written (a directory, a missing folder, not permitted)
    is a ValidationError naming `field`, before anything is stored."""
    try:
        return path.open("wb")
    except OSError as exc:
        raise ValidationError(f"cannot write {path}: {exc.strerror or exc}", field=field) from None
