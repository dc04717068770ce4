"""Rounding to the fen, day-by-day accruals and largest-remainder splits (no database needed)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.products.rounding import (
    RoundingMode,
    cumulative_accrual_fen,
    parse_rate,
    round_down,
    round_half_even,
    round_half_up,
    split_largest_remainder,
)


@pytest.mark.parametrize(
    ("text", "half_up", "down", "half_even"),
    [
        ("179.4", 179, 179, 179),  # merchant fee 0.6% of 29900 (domain worked number)
        ("179.5", 180, 179, 180),
        ("180.5", 181, 180, 180),
        ("2.5", 3, 2, 2),
        ("0.4999999999999999999999999999", 0, 0, 0),
        ("0", 0, 0, 0),
        # Negatives (amounts given back): down truncates toward zero, ties go away from zero.
        ("-179.4", -179, -179, -179),
        ("-179.5", -180, -179, -180),
        ("-2.5", -3, -2, -2),
        ("-0.9", -1, 0, -1),
        ("12345678901234567890123456789.5", 12345678901234567890123456790,
         12345678901234567890123456789, 12345678901234567890123456790),
    ],
)
def test_rounding_functions_and_modes_agree(
    text: str, half_up: int, down: int, half_even: int
) -> None:
    value = Decimal(text)
    assert (round_half_up(value), round_down(value), round_half_even(value)) == (
        half_up, down, half_even,
    )
    assert RoundingMode.HALF_UP.apply(value) == half_up
    assert RoundingMode.DOWN.apply(value) == down
    assert RoundingMode.HALF_EVEN.apply(value) == half_even


def test_advance_rounds_down() -> None:
    # Factoring: 80% of an invoice of 99999 fen is 79999.2, the advance is 79999.
    assert RoundingMode.DOWN.apply(99999 * Decimal("0.8")) == 79999


def test_rounding_mode_is_stored_by_name() -> None:
    assert RoundingMode("half_up") is RoundingMode.HALF_UP
    assert {mode.value for mode in RoundingMode} == {"half_up", "down", "half_even"}


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_rounding_refuses_non_finite(text: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        round_half_up(Decimal(text))


def test_rounding_refuses_non_decimal() -> None:
    with pytest.raises(ValueError, match="Decimal"):
        round_half_up(float("179.4"))  # type: ignore[arg-type]


def test_factoring_fee_accrues_20000_a_day() -> None:
    days = [cumulative_accrual_fen(80000000, Decimal("0.00025"), d, RoundingMode.HALF_UP)
            for d in range(1, 31)]
    assert days == [20000] * 30
    assert sum(days) == 600000


@pytest.mark.parametrize("mode", list(RoundingMode))
@pytest.mark.parametrize(
    ("principal_fen", "rate_text"),
    [(1000, "0.0015"), (333, "0.00025"), (99999, "0.000137"), (7, "0.0714285")],
)
def test_accruals_sum_to_the_rounded_total(
    mode: RoundingMode, principal_fen: int, rate_text: str
) -> None:
    rate = Decimal(rate_text)
    for total_days in range(1, 100):
        posted = [cumulative_accrual_fen(principal_fen, rate, d, mode)
                  for d in range(1, total_days + 1)]
        assert sum(posted) == mode.apply(principal_fen * rate * total_days)
        assert min(posted) >= 0


def test_accrual_differs_from_rounding_each_day() -> None:
    # 1.5 fen a day: rounding each day would post 2 every day (3 over two days is right).
    posted = [cumulative_accrual_fen(1000, Decimal("0.0015"), d, RoundingMode.HALF_UP)
              for d in (1, 2, 3, 4)]
    assert posted == [2, 1, 2, 1]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"day": 0}, "day"),
        ({"principal_fen": -1}, "principal_fen"),
        ({"rate_per_day": Decimal("-0.001")}, "rate_per_day"),
        ({"rate_per_day": Decimal("NaN")}, "rate_per_day"),
    ],
)
def test_accrual_validation(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {
        "principal_fen": 1000, "rate_per_day": Decimal("0.001"), "day": 1,
        "mode": RoundingMode.HALF_UP,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=field):
        cumulative_accrual_fen(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("total_fen", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),  # a tie: the earlier part gets the fen
        (10, [1, 2], [3, 7]),  # 3.33 / 6.67: the larger remainder wins
        (101, [1, 1], [51, 50]),
        (5, [0, 3, 0, 2], [0, 3, 0, 2]),
        (0, [4, 5], [0, 0]),
        (2, [1, 1, 1], [1, 1, 0]),
        (7, [5], [7]),
    ],
)
def test_split_largest_remainder(total_fen: int, weights: list[int], expected: list[int]) -> None:
    assert split_largest_remainder(total_fen, weights) == expected


def test_split_always_adds_up() -> None:
    weight_sets = [[1, 2, 3], [7, 7, 7, 7], [1, 1000000], [3, 0, 11, 5, 2], list(range(1, 20))]
    for weights in weight_sets:
        for total_fen in range(0, 500):
            parts = split_largest_remainder(total_fen, weights)
            assert sum(parts) == total_fen
            # Each part is within one fen of its exact share.
            for part, weight in zip(parts, weights, strict=True):
                assert abs(part * sum(weights) - total_fen * weight) < sum(weights)


@pytest.mark.parametrize(
    ("total_fen", "weights", "message"),
    [
        (100, [], "weights"),
        (100, [0, 0], "zero"),
        (100, [1, -1], "weight"),
        (-1, [1], "total_fen"),
        (100, [True, 1], "weight"),
    ],
)
def test_split_validation(total_fen: int, weights: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_largest_remainder(total_fen, weights)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.006", "0.006"),
        ("6E-3", "0.006"),
        ("6e-3", "0.006"),
        ("0.000000000000000001", "1E-18"),
        ("1E-18", "1E-18"),
        ("0.1" + "0" * 40, "0.1"),  # trailing zeros are no decimal places of the value
        ("0E-100", "0"),
        ("0", "0"),
        ("+0.5", "0.5"),
        (".5", "0.5"),
        ("1e2", "100"),
    ],
)
def test_parse_rate_accepts_decimal_text(text: str, expected: str) -> None:
    parsed = parse_rate(text, field="fee_rate")
    assert isinstance(parsed, Decimal)
    assert parsed == Decimal(expected)


@pytest.mark.parametrize(
    "text",
    ["NaN", "nan", "sNaN", "Infinity", "inf", "-Infinity", "-0.006", "-0", "", "abc",
     "0,006", "1_000", "0x10", "1e", "\u0661", " 0.025 ", " 0.01", "0.01\n", "\t0.01", "0.01\u3000"],
)
def test_parse_rate_refuses_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match="merchant_fee_rate"):
        parse_rate(text, field="merchant_fee_rate")


@pytest.mark.parametrize("text", ["1e-999999999", "0.0000000000000000001", "1E-19", "0." + "1" * 28,
                                  "0.1234567890123456789"])
def test_parse_rate_refuses_more_than_18_places(text: str) -> None:
    with pytest.raises(ValueError, match="merchant_fee_rate has at most 18 decimal places"):
        parse_rate(text, field="merchant_fee_rate")


def test_parse_rate_refuses_text_past_64_characters() -> None:
    assert parse_rate("0." + "0" * 62, field="fee_rate") == 0  # 64 characters
    with pytest.raises(ValueError, match="fee_rate must be at most 64 characters, got 65"):
        parse_rate("0." + "0" * 63, field="fee_rate")
    with pytest.raises(ValueError, match="at most 64 characters"):
        parse_rate("9" * 5000, field="fee_rate")


def test_parse_rate_refuses_a_float() -> None:
    # The only float in the project: proving it cannot get in as a rate.
    with pytest.raises(ValueError, match="merchant_fee_rate.*float"):
        parse_rate(float("0.006"), field="merchant_fee_rate")  # type: ignore[arg-type]


def test_parse_rate_refuses_a_decimal_object() -> None:
    # Configuration arrives as text; accepting objects would let a float-built Decimal in.
    with pytest.raises(ValueError, match="merchant_fee_rate"):
        parse_rate(Decimal("0.006"), field="merchant_fee_rate")  # type: ignore[arg-type]
