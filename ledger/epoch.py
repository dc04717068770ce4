"""Timestamps as whole microseconds since the Unix epoch (1970-01-01 UTC).

The one conversion the hash chain's canonical encoding and the cursors use: an integer is exact
(PostgreSQL keeps microseconds) and reads the same in every language an auditor may check with.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["epoch_us", "from_epoch_us"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_us(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (value - _EPOCH) // _MICROSECOND


def from_epoch_us(value_us: int) -> datetime:
    """The UTC datetime `value_us` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=value_us)
