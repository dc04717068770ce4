"""Versioned product settings (table `ledger.product_setting_changes`).

A change names some of a product's settings with their new values and the business day it takes
effect from. The value in force on a day is, per setting, the one of the change with the latest
effective day on or before that day (of two changes for the same day, the later recorded).

No change is retroactive: it takes effect from tomorrow (business calendar) at the earliest.
Everything dated up to today, whether it has happened yet or is still to come today, is judged
by the settings already in force, and a loan copies the terms it depends on when it opens. A
change lies at most `schedule_days_max` days ahead, so a date at the far end of the calendar is
refused too. Changes are never edited; a scheduled change is superseded by a later one for the
same day.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ledger import calendar
from ledger.errors import ValidationError

__all__ = ["schedule_days_max", "history_page_max", "recorded_by_length_max", "SettingsChange",
           "first_day", "check_day", "check_effective_from", "values_on", "record_change", "history"]

schedule_days_max = 366
history_page_max = 1000
first_day = date(1970, 1, 1)  # the day the first values are in force from
recorded_by_length_max = 100


@dataclass(frozen=True)
class SettingsChange:
    id: int
    product: str
    settings: Mapping[str, str]
    effective_from: date
    recorded_at: datetime
    recorded_by: str


def check_effective_from(value: object, *, today: Callable[[], date] = calendar.today) -> date:
    """The day a change may take effect from: after today, at most `schedule_days_max` ahead."""
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValidationError(f"effectiveFrom must be a calendar date, got {value!r}", field="effectiveFrom")
    now = today()
    if value <= now:
        raise ValidationError(
            f"effectiveFrom {value} is not after today ({now}): a settings change applies from tomorrow "
            f"at the earliest, never to a day already begun", field="effectiveFrom", today=now.isoformat())
    last = now + timedelta(days=schedule_days_max)
    if value > last:
        raise ValidationError(f"effectiveFrom {value} lies more than {schedule_days_max} days ahead (at most {last})",
                              field="effectiveFrom", latest=last.isoformat())
    return value


def check_day(value: object, *, field: str = "on") -> date:
    """A day settings can be asked for: a calendar date from `first_day` on."""
    if not isinstance(value, date) or isinstance(value, datetime) or value < first_day:
        raise ValidationError(f"{field} must be a calendar date from {first_day} on, got {value!r}", field=field)
    return value


def values_on(conn: psycopg.Connection[Any], product: str, day: date) -> dict[str, str]:
    """Every setting of the product as in force on business day `day`."""
    rows = conn.execute(
        """select distinct on (s.key) s.key, s.value
             from ledger.product_setting_changes c cross join lateral jsonb_each_text(c.settings) s
            where c.product = %s and c.effective_from <= %s
            order by s.key, c.effective_from desc, c.id desc""", (product, day)).fetchall()
    return {str(name): str(value) for name, value in rows}


def record_change(conn: psycopg.Connection[Any], product: str, settings: Mapping[str, str], effective_from: date,
                  recorded_by: str) -> SettingsChange:
    """Append a change whose values the product's module has checked."""
    if not settings:
        raise ValidationError("a settings change names at least one setting", field="input")
    if not 1 <= len(recorded_by) <= recorded_by_length_max:
        raise ValidationError(f"recordedBy must be 1 to {recorded_by_length_max} characters", field="recordedBy")
    row = conn.execute(
        """insert into ledger.product_setting_changes (product, settings, effective_from, recorded_by)
           values (%s, %s, %s, %s) returning id, recorded_at""",
        (product, Jsonb(dict(settings)), effective_from, recorded_by)).fetchone()
    assert row is not None
    return SettingsChange(int(row[0]), product, dict(settings), effective_from, row[1], recorded_by)


def history(conn: psycopg.Connection[Any], product: str, *, before_id: int | None = None,
            limit: int = history_page_max) -> list[SettingsChange]:
    """The product's changes, the latest recorded first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= history_page_max:
        raise ValidationError(f"first must be between 1 and {history_page_max}", field="first")
    rows = conn.execute(
        """select id, settings, effective_from, recorded_at, recorded_by from ledger.product_setting_changes
            where product = %s and (%s::bigint is null or id < %s) order by id desc limit %s""",
        (product, before_id, before_id, limit)).fetchall()
    return [SettingsChange(int(r[0]), product, {str(k): str(v) for k, v in r[1].items()}, r[2], r[3], str(r[4]))
            for r in rows]
