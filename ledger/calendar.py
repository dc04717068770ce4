"""The business calendar: which calendar day an instant belongs to, for every product.

A deployment keeps its books in one time zone, the business time zone: an IANA name read from
the environment variable `LEDGER_BUSINESS_TIME_ZONE` or the settings file's `business_time_zone`
(ledger/settings.py; default `Asia/Shanghai`, a CNY platform
whose day ends at midnight in Beijing). A business day is the half-open interval [00:00 of the
day, 00:00 of the next day) in that zone; what is dated (a sweep, an invoice, a fee accrual, a
fund's income, a credit day, a statement's date column) is dated by it, and what is backdated to
a day takes effect at the instant that day starts.

Dates a person types follow one rule: a plain `YYYY-MM-DD` is the start of that business day, a
date and time must carry its UTC offset (`2026-11-01T09:30:00+08:00` or `...Z`).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.errors import LedgerError, ValidationError
from ledger.instants import check_instant, instant_max, instant_min
from ledger.settings import current

__all__ = [
    "BusinessTimeZoneInvalid",
    "time_zone_variable",
    "time_zone_default",
    "business_time_zone",
    "time_zone",
    "business_date",
    "day_start",
    "day_end",
    "day_bounds",
    "days_bounds",
    "today",
    "parse_date",
    "parse_instant",
]

time_zone_variable = "LEDGER_BUSINESS_TIME_ZONE"
time_zone_default = "Asia/Shanghai"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class BusinessTimeZoneInvalid(LedgerError):
    """The deployment's configured business time zone is not a known IANA zone name."""

    code = "BUSINESS_TIME_ZONE_INVALID"


def business_time_zone() -> ZoneInfo:
    """The deployment's business time zone, read on each call from the environment, else the
    settings file (ledger/settings.py), so a deployment, or a test, that sets it is obeyed at once."""
    name = str(current("business_time_zone") or "").strip() or time_zone_default
    try:
        return time_zone(name)
    except ValidationError:
        raise BusinessTimeZoneInvalid(
            f"{time_zone_variable} must be an IANA time zone name such as {time_zone_default}, got {name!r}",
            variable=time_zone_variable, value=name) from None


def time_zone(name: str, *, field: str = "timeZone") -> ZoneInfo:
    """The zone with this IANA name; a ValidationError naming `field` if there is none."""
    try:
        return _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{field} must be an IANA time zone name such as {time_zone_default}, got {name!r}",
                              field=field) from None


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def business_date(moment: datetime) -> date:
    """The business day an instant falls in."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError("a date and time must carry a UTC offset to have a business date")
    return moment.astimezone(business_time_zone()).date()


def day_start(day: date) -> datetime:
    """The instant the business day starts: 00:00 in the business time zone (in a zone whose
    clocks jump over midnight, the first instant that exists that day)."""
    zone = business_time_zone()
    try:
        local = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC).astimezone(zone)
    except OverflowError:  # 0001-01-01 east of UTC, 9999-12-31 west of it: before year 1 or past 9999
        raise ValidationError(f"the day {day.isoformat()} lies outside the times the ledger accepts, "
                              f"{instant_min.date()} up to {instant_max.date()}", field="date") from None
    offset = local.utcoffset()
    assert offset is not None
    # With the day's fixed offset rather than the zone: adding a duration then moves by elapsed
    # time, not by wall-clock time, and the instant is written as before (`...T00:00:00+08:00`),
    # which the fingerprint of a replayed request built from it compares.
    return local.replace(tzinfo=timezone(offset))


def day_end(day: date) -> datetime:
    """The instant the business day ends: the start of the next one (exclusive)."""
    return day_start(day + timedelta(days=1))


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of one business day."""
    return day_start(day), day_end(day)


def days_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) of the business days `first` through `last`, both included."""
    if last < first:
        raise ValidationError(f"a range of days ends ({last}) before it starts ({first})")
    return day_start(first), day_end(last)


def today() -> date:
    return business_date(datetime.now(UTC))


def parse_date(text: str, *, field: str = "date") -> date:
    """A business date typed as `YYYY-MM-DD`."""
    if not isinstance(text, str) or not _DATE.fullmatch(text.strip()):
        raise ValidationError(f"{field} must be a date YYYY-MM-DD, got {text!r}", field=field)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{field} must be a date YYYY-MM-DD, got {text!r}", field=field) from None


def parse_instant(text: str, *, field: str) -> datetime:
    """A plain `YYYY-MM-DD` (the start of that business day) or an ISO date and time with a
    UTC offset; a date and time without one is refused, not guessed."""
    if isinstance(text, str) and _DATE.fullmatch(text.strip()):
        return check_instant(day_start(parse_date(text, field=field)), field)
    try:
        parsed = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValidationError(f"{field} must be an ISO date or date and time, got {text!r}", field=field) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValidationError(f"{field} must carry a UTC offset (e.g. 2026-11-01T00:00:00+08:00), got {text!r}",
                              field=field)
    return check_instant(parsed, field)
