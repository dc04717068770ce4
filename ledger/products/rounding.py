"""Rounding of money amounts to whole fen, accruals and exact splits.

Amounts are integers of fen and rates are Decimals; a float never enters. Products round once,
when posting, in the mode they are configured with (half-up by default, advances round down,
fund income truncates); see `docs/rules.md`, "Rounding".

These helpers raise plain `ValueError`s so they stay free of the database layer; the product
code that calls them turns a bad input into the ledger's typed errors.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext

__all__ = [
    "decimal_prec",
    "split_parts_max",
    "RoundingMode",
    "round_half_up",
    "round_down",
    "round_half_even",
    "cumulative_accrual_fen",
    "split_largest_remainder",
    "parse_rate",
    "require_rate",
    "rate_places_max",
    "rate_text_length_max",
    "rate_places",
    "require_rate_places",
]

# Enough significant digits that a product of a fen amount and a rate is exact: a bigint of fen
# has 19 digits and a rate rarely more than 10, far below 50, so rounding happens only where we
# say so.
decimal_prec = 50

# One split serves at most this many parts (holders, instalments); a larger one is a caller bug.
split_parts_max = 1_000_000

# A rate is written in at most this many characters and has at most this many decimal places once
# parsed (trailing zeros do not count): ample for any rate a product quotes (the finest, a daily
# fee, has 6), while "1e-999999999" or a 28-digit fraction, which only a mistake or a probe sends,
# is refused before any product multiplies by it.
rate_text_length_max = 64
rate_places_max = 18

# A plain decimal number, optionally with an exponent, and nothing around it. Decimal() alone would also take "NaN",
# "Infinity", underscores and non-ASCII digits, none of which belong in a configured rate.
_RATE_PATTERN = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def _to_fen(value: Decimal, rounding: str) -> int:
    if not isinstance(value, Decimal):
        raise ValueError(f"expected a Decimal to round, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"cannot round {value} to fen: expected a finite Decimal")
    # to_integral_value is exact whatever the context precision, unlike quantize.
    return int(value.to_integral_value(rounding=rounding))


def round_half_up(value: Decimal) -> int:
    """Nearest fen, ties away from zero (179.5 -> 180): the ledger's default."""
    return _to_fen(value, ROUND_HALF_UP)


def round_down(value: Decimal) -> int:
    """Drop the fraction, toward zero; for the positive amounts we post this is the floor."""
    return _to_fen(value, ROUND_DOWN)


def round_half_even(value: Decimal) -> int:
    """Nearest fen, ties to the even fen (banker's rounding), for products that ask for it."""
    return _to_fen(value, ROUND_HALF_EVEN)


class RoundingMode(enum.Enum):
    """How a product turns an exact amount into fen; stored as a product setting by value."""

    HALF_UP = "half_up"
    DOWN = "down"
    HALF_EVEN = "half_even"

    def apply(self, value: Decimal) -> int:
        return _to_fen(value, _DECIMAL_ROUNDING[self])


_DECIMAL_ROUNDING: dict[RoundingMode, str] = {
    RoundingMode.HALF_UP: ROUND_HALF_UP,
    RoundingMode.DOWN: ROUND_DOWN,
    RoundingMode.HALF_EVEN: ROUND_HALF_EVEN,
}


def _require_int(value: int, *, field: str, minimum: int) -> None:
    # bool is an int subclass; True as an amount is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{field} must be at least {minimum}, got {value}")


def require_rate(rate: Decimal, *, field: str) -> None:
    """Refuse a rate that is not a finite, non-negative Decimal, naming the field."""
    if not isinstance(rate, Decimal):
        raise ValueError(f"{field} must be a Decimal, got {type(rate).__name__}")
    if not rate.is_finite() or rate.is_signed():
        raise ValueError(f"{field} must be a finite Decimal >= 0, got {rate}")


def cumulative_accrual_fen(
    principal_fen: int, rate_per_day: Decimal, day: int, mode: RoundingMode
) -> int:
    """The accrual to post on `day` (1-based): round(P r d) - round(P r (d - 1)).

    Rounding the running total rather than each day keeps the sum over D days exactly
    round(P r D), so daily postings never drift from the contractual figure.
    """
    _require_int(principal_fen, field="principal_fen", minimum=0)
    require_rate(rate_per_day, field="rate_per_day")
    _require_int(day, field="day", minimum=1)
    with localcontext(prec=decimal_prec):
        daily = principal_fen * rate_per_day
        return mode.apply(daily * day) - mode.apply(daily * (day - 1))


def _check_weights(weights: Sequence[int]) -> int:
    if not 1 <= len(weights) <= split_parts_max:
        raise ValueError(f"weights must have 1 to {split_parts_max} parts, got {len(weights)}")
    for weight in weights:
        _require_int(weight, field="each weight", minimum=0)
    weight_total = sum(weights)
    if weight_total == 0:
        raise ValueError("weights must not all be zero")
    return weight_total


def split_largest_remainder(total_fen: int, weights: Sequence[int]) -> list[int]:
    """Split `total_fen` in proportion to `weights` so the parts add up to it exactly.

    Each part gets the floor of its exact share; the fen left over go one each to the largest
    remainders, ties to the earlier part, so the result is deterministic.
    """
    _require_int(total_fen, field="total_fen", minimum=0)
    weight_total = _check_weights(weights)
    shares = [divmod(total_fen * weight, weight_total) for weight in weights]
    parts = [quotient for quotient, _ in shares]
    leftover = total_fen - sum(parts)
    by_remainder = sorted(range(len(shares)), key=lambda index: (-shares[index][1], index))
    for index in by_remainder[:leftover]:
        parts[index] += 1
    assert sum(parts) == total_fen, "largest-remainder split lost a fen"
    return parts


def rate_places(rate: Decimal) -> int:
    """The decimal places of a finite Decimal's value: 0.0060 has 3, 6E-3 has 3, 1E+2 has 0.

    Read from the digits and exponent, so it is exact and cheap for any exponent (normalize()
    would round a long coefficient to the context's precision)."""
    _, digits, exponent = rate.as_tuple()
    assert isinstance(exponent, int), f"rate_places of {rate}"
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    if trailing_zeros == len(digits):  # zero, however written
        return 0
    return max(0, -(exponent + trailing_zeros))


def require_rate_places(rate: Decimal, *, field: str) -> None:
    """Refuse a rate with more than `rate_places_max` decimal places, naming the field."""
    places = rate_places(rate)
    if places > rate_places_max:
        raise ValueError(f"{field} has at most {rate_places_max} decimal places, got {places}")


def parse_rate(text: str, *, field: str) -> Decimal:
    """Parse a configured rate such as "0.006" or "6E-3"; `field` names it in errors.

    The text is taken as it is: whitespace around it is refused, not stripped, like every
    other value a client sends."""
    if not isinstance(text, str):
        raise ValueError(
            f"{field} must be given as a decimal string such as '0.006', "
            f"got {type(text).__name__}"
        )
    if len(text) > rate_text_length_max:
        raise ValueError(f"{field} must be at most {rate_text_length_max} characters, got {len(text)}")
    if _RATE_PATTERN.fullmatch(text) is None:
        raise ValueError(
            f"{field} must be a finite decimal number such as '0.006' with nothing around it, got {text!r}"
        )
    rate = Decimal(text)
    if rate.is_signed():
        raise ValueError(f"{field} must not be negative, got {text!r}")
    require_rate_places(rate, field=field)
    return rate
