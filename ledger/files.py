"""Files an operator names on the command line: read whole but never more than a bound; output
files checked before the work, so a path that cannot be written stops the command first, and
put in place only when the work succeeded.

The bound is checked while reading, not from the file's size: a device (`/dev/zero`), a pipe or a
file still growing has no size to trust, and reading it whole would never end or fill the memory.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from ledger.errors import ValidationError

__all__ = ["read_bounded", "open_output", "OutputFile"]


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


class OutputFile:
    """A command's output file, made whole or not at all: the bytes go to a hidden file beside
    the target, which replaces the target only when the command's work has succeeded (the
    `with` block ends without an exception). A command that fails part-way leaves the file
    that was there before, not an empty or a half-written one. A target that exists and is not
    a regular file (a device such as /dev/stdout, a pipe) is written to directly."""

    def __init__(self, path: Path, *, field: str) -> None:
        self.path = path
        try:
            if path.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
            self._direct = path.exists() and not path.is_file()
            if self._direct:
                self._stream: BinaryIO = path.open("wb")
                self._staging: Path | None = None
            else:
                descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
                self._stream = os.fdopen(descriptor, "wb")
                self._staging = Path(staging)
        except OSError as exc:
            raise ValidationError(f"cannot write {path}: {exc.strerror or exc}", field=field) from None
        self._field = field

    def write(self, data: bytes) -> None:
        self._stream.write(data)

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None and self._staging is not None:
                self._stream.flush()
                os.fsync(self._stream.fileno())
        finally:
            self._stream.close()
        if self._staging is None:
            return
        if kind is not None:
            self._staging.unlink(missing_ok=True)
            return
        try:
            os.replace(self._staging, self.path)
        except OSError as exc:
            self._staging.unlink(missing_ok=True)
            raise ValidationError(f"cannot write {self.path}: {exc.strerror or exc}", field=self._field) from None


def open_output(path: Path, *, field: str) -> OutputFile:
    """The file to write a command's output to, checked and staged before the command does its
    work: a path that cannot be written (a directory, a missing folder, not permitted) is a
    ValidationError naming `field`, before anything is stored. Use it in a `with` block."""
    return OutputFile(path, field=field)
