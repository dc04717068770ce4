"""Fund arithmetic against every 7-day yield the fund published from 2013-07-01 to 2014-08-31."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from itertools import pairwise

import pytest
from published import yuebao_days

from ledger.products.fund_math import (
    daily_income_fen,
    parse_income_per_10k,
    seven_day_yield_percent,
)


def _published() -> list[tuple[date, Decimal, Decimal]]:
    """(date, income per 10k, published 7-day yield) per day, in date order."""
    return sorted((d.day, d.income_per_10k, d.seven_day_yield_percent) for d in yuebao_days())


def test_every_published_seven_day_yield_is_reproduced() -> None:
    rows = _published()
    income_by_day = {day: income for day, income, _ in rows}
    checked, mismatches = 0, []
    for day, _, published in rows:
        # The window ends on the publication day and includes it; a window ending the day
        # before reproduces only 10 of the 420 figures it could be compared with.
        window = [day - timedelta(days=back) for back in range(6, -1, -1)]
        if not all(d in income_by_day for d in window):
            continue
        computed = seven_day_yield_percent([income_by_day[d] for d in window])
        checked += 1
        if computed != published:
            mismatches.append((day.isoformat(), str(published), str(computed)))
    assert mismatches == []
    # 427 consecutive days, of which the first six lack a full window.
    assert (len(rows), checked) == (427, 421)


def test_published_data_is_complete() -> None:
    rows = _published()
    days = [day for day, _, _ in rows]
    assert days[0] == date(2013, 7, 1) and days[-1] == date(2014, 8, 31)
    assert all((b - a).days == 1 for a, b in pairwise(days))


def test_worked_example_2014_01_01_to_07() -> None:
    incomes = [Decimal(t) for t in
               ["1.7807", "1.8092", "1.7847", "1.7751", "1.7748", "1.7740", "1.8086"]]
    result = seven_day_yield_percent(incomes)
    assert result == Decimal("6.738")
    assert str(result) == "6.738"  # always three decimals
    # The simple average annualized (the wrong rule) gives 6.522.
    simple = (sum(incomes, Decimal(0)) / 7 * 365 / 100).quantize(Decimal("0.001"))
    assert simple == Decimal("6.522") != result


def test_yield_is_always_three_decimals() -> None:
    assert str(seven_day_yield_percent([Decimal(0)] * 7)) == "0.000"
    assert str(seven_day_yield_percent([Decimal("1.5")] * 7)) == "5.627"


@pytest.mark.parametrize("income_text", ["0.0001", "1.1", "1.5", "1.8220", "2.9999"])
def test_constant_income_matches_an_integer_power(income_text: str) -> None:
    # With the same R all week, (1 + R/10000)^7 raised to 365/7 is just (1 + R/10000)^365: an
    # independent path that needs no logarithms.
    with localcontext(prec=60):
        exact = ((1 + Decimal(income_text) / 10000) ** 365 - 1) * 100
        expected = exact.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    assert seven_day_yield_percent([Decimal(income_text)] * 7) == expected


@pytest.mark.parametrize("count", [0, 6, 8])
def test_yield_needs_exactly_seven_days(count: int) -> None:
    with pytest.raises(ValueError, match="exactly 7"):
        seven_day_yield_percent([Decimal("1.5")] * count)


@pytest.mark.parametrize("bad", [Decimal("-0.1"), Decimal("NaN"), Decimal("10000.0001")])
def test_yield_refuses_bad_incomes(bad: Decimal) -> None:
    with pytest.raises(ValueError, match="incomes_per_10k"):
        seven_day_yield_percent([Decimal("1.5")] * 6 + [bad])


@pytest.mark.parametrize(
    ("balance_fen", "income_text", "expected"),
    [
        (100000, "1.7807", 17),  # 1000 yuan earns 17.807 fen: truncated to 17
        (10000, "1.7807", 1),
        (9999, "1.0001", 0),
        (0, "1.7807", 0),
        (123456789, "0", 0),
        (10000000000, "1.2345", 1234500),
        # Far beyond any context precision: still exact, because it is integer arithmetic.
        (10**40 + 1, "1.9999", (10**40 + 1) * 19999 // 100000000),
    ],
)
def test_daily_income_truncates(balance_fen: int, income_text: str, expected: int) -> None:
    assert daily_income_fen(balance_fen, Decimal(income_text)) == expected


def test_daily_income_validation() -> None:
    with pytest.raises(ValueError, match="balance_fen"):
        daily_income_fen(-1, Decimal("1.5"))
    with pytest.raises(ValueError, match="income_per_10k"):
        daily_income_fen(100, Decimal("-1.5"))
    with pytest.raises(ValueError, match="income_per_10k must have at most 4 decimals"):
        daily_income_fen(100, Decimal("1.50001"))
    with pytest.raises(ValueError, match="income_per_10k"):
        daily_income_fen(100, float("1.5"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.7807", "1.7807"), ("1.467", "1.467"), ("0", "0"), ("0.00000", "0"),
        ("1.50000", "1.5"), ("2E-4", "0.0002"), ("1.2E+3", "1200"), ("10000", "10000"),
    ],
)
def test_parse_income_per_10k(text: str, expected: str) -> None:
    assert parse_income_per_10k(text) == Decimal(expected)


@pytest.mark.parametrize(
    "text", ["1.78071", "-1.5", "NaN", "Infinity", "", "abc", "1e-5", "10001", "1e999999999",
             "1e-999999999"]
)
def test_parse_income_per_10k_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="income_per_10k"):
        parse_income_per_10k(text)
