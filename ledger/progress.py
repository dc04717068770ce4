"""A terminal progress reporter for long jobs: imports, accruals over many holders, verification.

One line, rewritten in place as the percentage changes; silent when the output is not a
terminal, so logs and pipes get only the jobs' own summaries.
"""

from __future__ import annotations

from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """A one-line progress counter on a terminal; silent when output is not a terminal."""

    def __init__(self, out: TextIO | None, total: int, label: str) -> None:
        self.out = out if out is not None and out.isatty() else None
        self.total, self.label, self.done, self._shown = max(total, 1), label, 0, -1

    def advance(self, count: int = 1) -> None:
        self.done += count
        percent = self.done * 100 // self.total
        if self.out is not None and percent != self._shown:
            self._shown = percent
            self.out.write(f"\r{self.label}: {self.done:,}/{self.total:,} ({percent}%)")
            self.out.flush()

    def finish(self) -> None:
        if self.out is not None:
            self.out.write("\n")
            self.out.flush()
