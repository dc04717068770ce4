"""The instants the ledger accepts: from 1970-01-01 (inclusive) to 9999-01-01 (exclusive), UTC,
written with an offset of whole minutes within ±14:00.

A calendar day taken from a caller (a business day, an invoice's due date) lies from `day_min`
to `day_max`, the days of those years: converting one to the instant it starts, or stepping a
day past it, then never leaves what Python can represent (`day_problem`).

Outside this range the two sides of the ledger disagree: PostgreSQL stores years Python cannot
represent (9999-12-31T23:59:59-12:00 is in year 10000 in UTC, 0001-01-01T00:00:00+14:00 in year
0), so such a time would be accepted and then fail to read back; an offset with fractional
seconds prints in a form PostgreSQL refuses. Every datetime the core takes from a caller passes
`check_instant`, and the API's DateTime scalar applies the same bounds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ledger.errors import ValidationError

__all__ = ["instant_min", "instant_max", "utc_offset_max", "day_min", "day_max", "instant_problem", "check_instant",
           "day_problem"]

instant_min = datetime(1970, 1, 1, tzinfo=UTC)   # inclusive
instant_max = datetime(9999, 1, 1, tzinfo=UTC)   # exclusive
utc_offset_max = timedelta(hours=14)                      # the widest offset in use (Kiribati)
_OFFSET_STEP = timedelta(minutes=1)
day_min = instant_min.date()                              # 1970-01-01, inclusive
day_max = (instant_max - timedelta(days=1)).date()        # 9998-12-31, inclusive


def instant_problem(value: datetime) -> str | None:
    """What is wrong with `value` as an instant the ledger records, or None when nothing is."""
    offset = value.utcoffset()
    if offset is None:
        return "it must carry a UTC offset (Z or +08:00)"
    if abs(offset) > utc_offset_max or offset % _OFFSET_STEP:
        return f"its UTC offset must be whole minutes within ±14:00, got {offset}"
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # the offset moves it past year 1 or 9999
        utc = None
    if utc is None or not instant_min <= utc < instant_max:
        return f"it must lie from {instant_min.isoformat()} up to (not including) {instant_max.isoformat()}"
    return None


def check_instant(value: object, field: str) -> datetime:
    """`value` if it is a datetime inside the accepted range, else a ValidationError naming `field`."""
    if not isinstance(value, datetime):
        raise ValidationError(f"{field} must be a date and time with a UTC offset", field=field)
    problem = instant_problem(value)
    if problem is not None:
        raise ValidationError(f"{field} is not an accepted time: {problem}", field=field)
    return value


def day_problem(value: date) -> str | None:
    """What is wrong with `value` as a calendar day the ledger takes, or None when nothing is.
    0001-01-01 starts in year 0 in UTC east of Greenwich, and the day after 9999-12-31 does not
    exist in Python: such a day would fail as an overflow, not as a refusal."""
    if not day_min <= value <= day_max:
        return f"it must lie from {day_min.isoformat()} to {day_max.isoformat()}"
    return None
