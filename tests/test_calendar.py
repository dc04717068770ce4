"""The business calendar: the configured zone, day bounds and the dates people type."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ledger import calendar
from ledger.errors import ValidationError

SHANGHAI_MIDNIGHT = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # 2026-03-02 00:00 in Shanghai
LAST_INSTANT = SHANGHAI_MIDNIGHT - timedelta(microseconds=1)          # 2026-03-01 23:59:59.999999 there


def test_default_zone_is_shanghai_and_a_day_is_midnight_to_midnight_there(monkeypatch: Any) -> None:
    monkeypatch.delenv(calendar.time_zone_variable, raising=False)
    assert calendar.business_time_zone().key == "Asia/Shanghai"
    assert calendar.day_start(date(2026, 3, 2)) == SHANGHAI_MIDNIGHT
    # Written with the day's offset, as the products wrote it before: a replayed request that
    # carries a day's start reads the same, so its fingerprint matches.
    assert calendar.day_start(date(2026, 3, 2)).isoformat() == "2026-03-02T00:00:00+08:00"
    assert calendar.day_bounds(date(2026, 3, 1)) == (SHANGHAI_MIDNIGHT - timedelta(days=1), SHANGHAI_MIDNIGHT)
    assert calendar.days_bounds(date(2026, 2, 27), date(2026, 3, 1)) == (
        SHANGHAI_MIDNIGHT - timedelta(days=3), SHANGHAI_MIDNIGHT)
    assert calendar.business_date(LAST_INSTANT) == date(2026, 3, 1)
    assert calendar.business_date(SHANGHAI_MIDNIGHT) == date(2026, 3, 2)
    # The same instants in UTC are both on 2026-03-01: the business day is not the UTC day.
    assert LAST_INSTANT.date() == SHANGHAI_MIDNIGHT.date() == date(2026, 3, 1)


def test_the_zone_is_configurable_per_deployment(monkeypatch: Any) -> None:
    monkeypatch.setenv(calendar.time_zone_variable, "Europe/London")
    assert calendar.day_start(date(2026, 3, 2)) == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    assert calendar.day_start(date(2026, 7, 2)) == datetime(2026, 7, 1, 23, 0, tzinfo=UTC)  # BST
    assert calendar.business_date(SHANGHAI_MIDNIGHT) == date(2026, 3, 1)
    assert calendar.parse_instant("2026-03-02", field="from") == datetime(2026, 3, 2, tzinfo=UTC)
    monkeypatch.setenv(calendar.time_zone_variable, "Asia/Shanghai")
    assert calendar.day_start(date(2026, 3, 2)) == SHANGHAI_MIDNIGHT


def test_an_unknown_zone_is_a_clear_error(monkeypatch: Any) -> None:
    monkeypatch.setenv(calendar.time_zone_variable, "Mars/Olympus")
    with pytest.raises(calendar.BusinessTimeZoneInvalid, match="LEDGER_BUSINESS_TIME_ZONE must be an IANA"):
        calendar.today()
    with pytest.raises(ValidationError, match="timeZone must be an IANA"):
        calendar.time_zone("../etc/passwd")


def test_a_day_whose_midnight_does_not_exist_starts_at_its_first_instant(monkeypatch: Any) -> None:
    # Chile springs forward at 24:00 on the first Saturday of September: 2026-09-06 has no 00:00.
    monkeypatch.setenv(calendar.time_zone_variable, "America/Santiago")
    start = calendar.day_start(date(2026, 9, 6))
    assert calendar.business_date(start) == date(2026, 9, 6)
    assert calendar.business_date(start - timedelta(microseconds=1)) == date(2026, 9, 5)


def test_typed_dates_and_date_times(monkeypatch: Any) -> None:
    monkeypatch.delenv(calendar.time_zone_variable, raising=False)
    assert calendar.parse_instant("2026-03-02", field="from") == SHANGHAI_MIDNIGHT
    assert calendar.parse_instant("2026-03-01T23:59:59.999999+08:00", field="to") == LAST_INSTANT
    assert calendar.parse_instant("2026-03-01T16:00:00Z", field="to") == SHANGHAI_MIDNIGHT
    assert calendar.parse_date("2026-03-02") == date(2026, 3, 2)
    with pytest.raises(ValidationError, match="must carry a UTC offset") as caught:
        calendar.parse_instant("2026-03-01T23:59:59", field="to")
    assert caught.value.field == "to"
    for bad in ("2026-02-30", "02/03/2026", "2026-3-2", "", "2026-03-02\n", " 2026-03-02", "+2026-03-02",
                "2026-03-02 ", "\u0662026-03-02"):
        with pytest.raises(ValidationError) as refused:
            calendar.parse_date(bad, field="date")
        assert refused.value.field == "date"
    for bad in ("2026-03-02\n", " 2026-03-02", "+2026-03-02", "\t2026-03-02"):  # taken as written, not stripped
        with pytest.raises(ValidationError) as refused:
            calendar.parse_instant(bad, field="from")
        assert refused.value.field == "from"
    with pytest.raises(ValidationError, match="from must be an ISO date"):
        calendar.parse_instant("yesterday", field="from")


def test_cli_dates_are_business_days(db_url: str, conn: psycopg.Connection[Any], monkeypatch: Any,
                                     capsys: Any) -> None:
    from ledger_cli.main import main

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv(calendar.time_zone_variable, raising=False)
    day = calendar.today() - timedelta(days=3)
    assert main(["close-period", day.isoformat()]) == 0
    assert capsys.readouterr().out.strip() == f"closed until {calendar.day_start(day).isoformat()}"
    row = conn.execute("select max(closed_until) from ledger.period_closes").fetchone()
    assert row is not None and row[0] == calendar.day_start(day)
    later = calendar.day_start(day + timedelta(days=1)) - timedelta(microseconds=1)
    assert main(["close-period", later.isoformat()]) == 0
    row = conn.execute("select max(closed_until) from ledger.period_closes").fetchone()
    assert row is not None and row[0] == later
    assert main(["close-period", later.replace(tzinfo=None).isoformat()]) == 2
    assert "must carry a UTC offset" in capsys.readouterr().err
    assert main(["factoring", "accrue", "--date", "2026-02-30"]) == 2
    assert "date must be a date YYYY-MM-DD" in capsys.readouterr().err
