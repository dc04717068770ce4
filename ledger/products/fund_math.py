"""Money-market fund arithmetic: a holder's daily income and the published 7-day yield.

The fund publishes each day its income per 10,000 units (R, 4 decimals). A holder earns
floor(balance x R / 10000) fen that day, and the 7-day annualized yield compounds the last seven
days: Y = (prod(1 + R_i / 10000))^(365/7) - 1, in percent to 3 decimals, half-up. This rule
reproduces every 7-day figure the fund published from 2013-07-01 to 2014-08-31, with the window
ending on (and including) the publication day; `tests/test_fund_math.py` checks all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext

from ledger.products.rounding import decimal_prec, parse_rate, require_rate

__all__ = [
    "yield_window_days",
    "annualization_days",
    "income_per_10k_decimals_max",
    "income_per_10k_max",
    "daily_income_fen",
    "seven_day_yield_percent",
    "parse_income_per_10k",
]

yield_window_days = 7
# The fund annualizes over a 365-day year whatever the calendar year's length.
annualization_days = 365
income_per_10k_decimals_max = 4
# A day's income can never exceed the units themselves; anything above is a corrupt quote.
income_per_10k_max = Decimal(10000)

_UNITS_PER_QUOTE = 10000
_PERCENT_PLACES = Decimal("0.001")


def _decimal_places(value: Decimal) -> int:
    """Decimals needed to write a finite value, ignoring trailing zeros ("1.50000" needs 1)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), "only finite values reach here"
    significant = "".join(map(str, digits)).rstrip("0")
    if not significant:
        return 0
    return max(0, -exponent - (len(digits) - len(significant)))


def _require_income(income: Decimal, *, field: str) -> None:
    # The quote is published to 4 decimals and bounded, which also keeps the exact-ratio and
    # exp() arithmetic below small whatever exponent a caller writes.
    require_rate(income, field=field)
    if income > income_per_10k_max:
        raise ValueError(f"{field} must be at most {income_per_10k_max}, got {income}")
    if _decimal_places(income) > income_per_10k_decimals_max:
        raise ValueError(
            f"{field} must have at most {income_per_10k_decimals_max} decimals, got {income}"
        )


def daily_income_fen(balance_fen: int, income_per_10k: Decimal) -> int:
    """A holder's income for one day: floor(balance x R / 10000), the fund truncates."""
    if isinstance(balance_fen, bool) or not isinstance(balance_fen, int):
        raise ValueError(f"balance_fen must be an int, got {type(balance_fen).__name__}")
    if balance_fen < 0:
        raise ValueError(f"balance_fen must not be negative, got {balance_fen}")
    _require_income(income_per_10k, field="income_per_10k")
    # Integer arithmetic on the exact ratio: no context precision can round a large balance.
    numerator, denominator = income_per_10k.as_integer_ratio()
    return (balance_fen * numerator) // (denominator * _UNITS_PER_QUOTE)


def seven_day_yield_percent(incomes_per_10k: Sequence[Decimal]) -> Decimal:
    """The 7-day annualized yield in percent, 3 decimals half-up, from the last 7 daily R.

    Pass the figures of the publication day and the six days before it.
    """
    if len(incomes_per_10k) != yield_window_days:
        raise ValueError(
            f"incomes_per_10k must hold exactly {yield_window_days} daily figures, "
            f"got {len(incomes_per_10k)}"
        )
    for income in incomes_per_10k:
        _require_income(income, field="incomes_per_10k")
    with localcontext(prec=decimal_prec):
        growth = Decimal(1)
        for income in incomes_per_10k:
            growth *= 1 + income / _UNITS_PER_QUOTE
        # Decimal has no fractional power with exact rounding; exp(ln(x) * 365 / 7) at 50
        # digits is accurate far beyond the 3 decimals published.
        annual = (growth.ln() * annualization_days / yield_window_days).exp() - 1
        return (annual * 100).quantize(_PERCENT_PLACES, rounding=ROUND_HALF_UP)


def parse_income_per_10k(text: str) -> Decimal:
    """Parse a published daily income per 10,000 units such as "1.7807"."""
    income = parse_rate(text, field="income_per_10k")
    _require_income(income, field="income_per_10k")
    return income
