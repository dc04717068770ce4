"""Loan schedules against the domain's worked numbers and an independent exact oracle."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from ledger.products.schedules import (
    Instalment,
    add_months,
    annuity_instalment_fen,
    annuity_schedule,
    equal_principal_schedule,
    instalment_conversion_schedule,
    schedule_months_max,
)

START = date(2014, 1, 15)


# --- an oracle written independently of the module: exact rationals, no Decimal context ---

def _half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def _oracle_instalment(principal_fen: int, rate: Fraction, months: int) -> int:
    if rate == 0:
        return principal_fen // months
    growth = (1 + rate) ** months
    return _half_up(principal_fen * rate * growth / (growth - 1))


def _oracle_annuity(principal_fen: int, rate: Fraction, months: int) -> list[tuple[int, int]]:
    """(principal, interest) per period, the last period clearing the balance."""
    instalment = _oracle_instalment(principal_fen, rate, months)
    rows, balance = [], principal_fen
    for _ in range(months - 1):
        interest = _half_up(balance * rate)
        principal = max(0, min(instalment - interest, balance))
        rows.append((principal, interest))
        balance -= principal
    rows.append((balance, _half_up(balance * rate)))
    return rows


# --- worked numbers (docs/rules.md) ---

def test_annuity_worked_example() -> None:
    schedule = annuity_schedule(10000, Decimal("0.01"), 6, START)
    assert [i.interest_fen for i in schedule] == [100, 84, 67, 51, 34, 17]
    assert [i.total_fen for i in schedule] == [1725] * 5 + [1728]
    assert sum(i.interest_fen for i in schedule) == 353
    assert sum(i.principal_fen for i in schedule) == 10000
    assert [i.principal_fen for i in schedule] == [1625, 1641, 1658, 1674, 1691, 1711]
    assert [i.number for i in schedule] == [1, 2, 3, 4, 5, 6]
    assert all(i.fee_fen == 0 for i in schedule)


def test_instalment_conversion_worked_example() -> None:
    schedule = instalment_conversion_schedule(100000, Decimal("0.005"), 3, START)
    assert [i.total_fen for i in schedule] == [33833, 33833, 33834]
    assert [i.fee_fen for i in schedule] == [500, 500, 500]
    assert [i.principal_fen for i in schedule] == [33333, 33333, 33334]
    assert all(i.interest_fen == 0 for i in schedule)


def test_equal_principal_schedule() -> None:
    schedule = equal_principal_schedule(10000, Decimal("0.01"), 3, START)
    assert [i.principal_fen for i in schedule] == [3333, 3333, 3334]
    # 1% of 10000, 6667 (66.67) and 3334 (33.34), each half-up.
    assert [i.interest_fen for i in schedule] == [100, 67, 33]


# --- the annuity against the oracle ---

RATES = [
    "0", "1E-12", "0.000001", "0.001", "0.0041667", "0.005", "0.01", "0.015", "0.02", "0.035",
    "0.004166666666666666666666666667",  # 5% a year / 12 as Decimal's default context gives it
    "0.5", "1",
]
PRINCIPALS = [1, 4, 99, 10000, 123457, 100000000, 987654321, 2**63 - 1]
MONTHS = [1, 2, 3, 6, 12, 24, 36, 60, 120, 360]


@pytest.mark.parametrize("rate_text", RATES)
def test_annuity_instalment_matches_exact_formula(rate_text: str) -> None:
    rate = Decimal(rate_text)
    for principal_fen in PRINCIPALS:
        for months in MONTHS:
            assert annuity_instalment_fen(principal_fen, rate, months) == _oracle_instalment(
                principal_fen, Fraction(rate), months
            ), (principal_fen, rate, months)


@pytest.mark.parametrize("rate_text", RATES)
def test_annuity_schedule_matches_oracle_and_adds_up(rate_text: str) -> None:
    rate = Decimal(rate_text)
    for principal_fen in PRINCIPALS:
        for months in MONTHS:
            schedule = annuity_schedule(principal_fen, rate, months, START)
            rows = [(i.principal_fen, i.interest_fen) for i in schedule]
            assert rows == _oracle_annuity(principal_fen, Fraction(rate), months)
            assert sum(i.principal_fen for i in schedule) == principal_fen
            assert all(i.principal_fen >= 0 and i.interest_fen >= 0 for i in schedule)


def test_annuity_instalment_just_above_a_half_rounds_up() -> None:
    # 99 fen at 50% a month over 360 months: exactly 49.5 plus about 1E-61. Computed naively at
    # 50 digits, (1 + r)^n - 1 rounds to (1 + r)^n and the instalment to 49, below the first
    # month's interest of 50.
    assert annuity_instalment_fen(99, Decimal("0.5"), 360) == 50
    assert annuity_schedule(99, Decimal("0.5"), 360, START)[0].principal_fen == 0


def test_annuity_at_zero_rate_puts_the_remainder_last() -> None:
    schedule = annuity_schedule(10000, Decimal(0), 3, START)
    assert [(i.principal_fen, i.interest_fen) for i in schedule] == [
        (3333, 0), (3333, 0), (3334, 0),
    ]


def test_tiny_annuity_never_repays_more_than_owed() -> None:
    # 4 fen over 6 months: the instalment rounds up to 1 fen and clears the loan in period 4.
    schedule = annuity_schedule(4, Decimal("0.001"), 6, START)
    assert [i.principal_fen for i in schedule] == [1, 1, 1, 1, 0, 0]


# --- due dates ---

@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2013, 1, 31), 1, date(2013, 2, 28)),
        (date(2016, 1, 31), 1, date(2016, 2, 29)),
        (date(2013, 3, 31), 1, date(2013, 4, 30)),
        (date(2013, 12, 15), 1, date(2014, 1, 15)),
        (date(2013, 11, 30), 3, date(2014, 2, 28)),
        (date(2014, 1, 15), 360, date(2044, 1, 15)),
        (date(2014, 3, 31), -1, date(2014, 2, 28)),
        (date(2014, 3, 31), 0, date(2014, 3, 31)),
    ],
)
def test_add_months(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_due_dates_are_counted_from_the_start_not_chained() -> None:
    # Chaining would drift Jan 31 -> Feb 28 -> Mar 28; each date is start + k months.
    schedule = annuity_schedule(10000, Decimal("0.01"), 4, date(2013, 1, 31))
    assert [i.due_date for i in schedule] == [
        date(2013, 2, 28), date(2013, 3, 31), date(2013, 4, 30), date(2013, 5, 31),
    ]


def test_instalment_is_frozen() -> None:
    instalment = Instalment(1, START, 100, 2, 3)
    assert instalment.total_fen == 105
    with pytest.raises(AttributeError):
        instalment.principal_fen = 1  # type: ignore[misc]


# --- validation ---

SCHEDULES = [annuity_schedule, equal_principal_schedule, instalment_conversion_schedule]


@pytest.mark.parametrize("build", SCHEDULES)
@pytest.mark.parametrize(
    ("principal_fen", "rate", "months", "message"),
    [
        (0, Decimal("0.01"), 6, "principal_fen must be positive"),
        (-100, Decimal("0.01"), 6, "principal_fen must be positive"),
        (True, Decimal("0.01"), 6, "principal_fen must be an int"),
        (10000, Decimal("0.01"), 0, "between 1 and 360"),
        (10000, Decimal("0.01"), schedule_months_max + 1, "between 1 and 360"),
        (10000, Decimal("-0.01"), 6, "rate must be a finite Decimal >= 0"),
        (10000, Decimal("NaN"), 6, "rate must be a finite Decimal >= 0"),
        (10000, Decimal("Infinity"), 6, "rate must be a finite Decimal >= 0"),
        (10000, "0.01", 6, "rate must be a Decimal"),
        (10000, Decimal("1.0001"), 6, "rate must be 0 or between"),
        (10000, Decimal("12"), 6, "rate must be 0 or between"),
        (10000, Decimal("1E-13"), 6, "rate must be 0 or between"),
        (10000, Decimal("1E-999999999"), 6, "rate must be 0 or between"),
    ],
)
def test_schedule_validation(
    build: object, principal_fen: int, rate: Decimal, months: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build(principal_fen, rate, months, START)  # type: ignore[operator]


def test_validation_names_the_argument() -> None:
    with pytest.raises(ValueError, match="instalments must be between"):
        instalment_conversion_schedule(100000, Decimal("0.005"), 0, START)
    with pytest.raises(ValueError, match="monthly_fee_rate"):
        instalment_conversion_schedule(100000, Decimal("-0.005"), 3, START)
    with pytest.raises(ValueError, match="months must be between"):
        annuity_schedule(100000, Decimal("0.005"), 361, START)
    with pytest.raises(ValueError, match="monthly_rate"):
        equal_principal_schedule(100000, float("0.005"), 3, START)  # type: ignore[arg-type]


def test_longest_schedule_is_allowed() -> None:
    schedule = annuity_schedule(100000000, Decimal("0.005"), schedule_months_max, START)
    assert len(schedule) == schedule_months_max
    assert sum(i.principal_fen for i in schedule) == 100000000
