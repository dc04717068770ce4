"""Timestamps as microseconds since the Unix epoch: exact both ways, as the hash chain encodes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from ledger.epoch import epoch_us, from_epoch_us


def test_known_values_and_round_trip() -> None:
    assert epoch_us(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert epoch_us(datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)) == 1_767_225_600_000_001
    assert epoch_us(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1
    east = datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    assert epoch_us(east) == epoch_us(datetime(2026, 1, 1, tzinfo=UTC))
    for value in (0, 1, -1, 1_767_225_600_123_456, 253_402_300_799_999_999):
        assert epoch_us(from_epoch_us(value)) == value
    assert from_epoch_us(1_767_225_600_000_001).utcoffset() == timedelta(0)


def test_the_database_agrees(conn) -> None:
    row = conn.execute("select t, (extract(epoch from t) * 1000000)::bigint from "
                       "(values ('2026-03-04 05:06:07.654321+00'::timestamptz)) v(t)").fetchone()
    assert epoch_us(row[0]) == row[1]
    assert from_epoch_us(row[1]) == row[0]
