"""When a product operation takes effect: its `effectiveAt`, under the rules of a posted transaction.

Like `postTransaction`'s effective time it carries a UTC offset, lies in [1970, 9999)
(ledger/instants.py) and outside every closed period (the core refuses that with PeriodClosed,
writing nothing). Unlike a posted transaction's, it may not lie ahead of now by more than
`clock_skew_max`: a product step reads what is owed, accrued or held as of its business day,
and a day still to come has no such figures yet. Absent, the operation takes effect now.

The business day an operation belongs to (ledger/calendar.py) is what its product rules judge:
a fee accrued through that day, a fund's income distributed for it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ledger import calendar
from ledger.errors import ValidationError
from ledger.instants import check_instant

__all__ = ["clock_skew_max", "parse_effective_at", "business_day_of", "request_instant"]

clock_skew_max = timedelta(minutes=5)


def parse_effective_at(value: object, *, field: str = "effectiveAt") -> datetime | None:
    """The instant given, checked; None (take effect now) when absent."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{field} must be a date and time with a UTC offset, got {value!r}", field=field)
    check_instant(value, field=field)
    latest = datetime.now(UTC) + clock_skew_max
    if value > latest:
        raise ValidationError(f"{field} {value.isoformat()} lies in the future: a product operation takes effect "
                              f"at the latest now (clock skew of {clock_skew_max} allowed)", field=field)
    return value


def business_day_of(effective_at: datetime | None) -> date:
    """The business day of an operation taking effect at `effective_at` (None: now)."""
    return calendar.today() if effective_at is None else calendar.business_date(effective_at)


def request_instant(effective_at: datetime | None) -> str | None:
    """The instant as a replayed request compares it: UTC, ISO 8601."""
    return None if effective_at is None else effective_at.astimezone(UTC).isoformat()
