"""Repayment schedules for consumer credit: annuity, equal principal and instalment conversion.

Every schedule's principal parts add up to the principal exactly: each period rounds its own
amounts to the fen and the last period takes whatever principal is left (see
`docs/rules.md`, "Consumer credit"). Due dates fall monthly after the start date.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext

from ledger.products.rounding import decimal_prec, require_rate, round_half_up

__all__ = [
    "schedule_months_max",
    "monthly_rate_max",
    "monthly_rate_min_positive",
    "Instalment",
    "add_months",
    "annuity_instalment_fen",
    "annuity_schedule",
    "equal_principal_schedule",
    "instalment_conversion_schedule",
]

# Thirty years of monthly periods: the longest loan the products offer.
schedule_months_max = 360
# 100% a month: anything above is a units mistake (12 meant as 12%), and it bounds (1 + r)^n.
monthly_rate_max = Decimal(1)
# The smaller a positive rate, the fewer digits of (1 + r)^n - 1 survive 50-digit arithmetic
# (about 38 at 1E-12, none at 1E-50 where it is 0). No product charges so little, so a smaller
# rate is refused rather than approximated.
monthly_rate_min_positive = Decimal("1E-12")


@dataclass(frozen=True, slots=True)
class Instalment:
    """One period of a schedule, in fen; `number` counts from 1."""

    number: int
    due_date: date
    principal_fen: int
    interest_fen: int
    fee_fen: int

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.interest_fen + self.fee_fen


def add_months(d: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (Jan 31 + 1 -> Feb 28 or 29)."""
    year, month_index = divmod(d.year * 12 + d.month - 1 + months, 12)
    month = month_index + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _validate(
    principal_fen: int, rate: Decimal, months: int, *, rate_field: str, months_field: str
) -> None:
    if isinstance(principal_fen, bool) or not isinstance(principal_fen, int):
        raise ValueError(f"principal_fen must be an int, got {type(principal_fen).__name__}")
    if principal_fen <= 0:
        raise ValueError(f"principal_fen must be positive, got {principal_fen}")
    if isinstance(months, bool) or not isinstance(months, int):
        raise ValueError(f"{months_field} must be an int, got {type(months).__name__}")
    if not 1 <= months <= schedule_months_max:
        raise ValueError(
            f"{months_field} must be between 1 and {schedule_months_max}, got {months}"
        )
    require_rate(rate, field=rate_field)
    if rate > monthly_rate_max or 0 < rate < monthly_rate_min_positive:
        raise ValueError(
            f"{rate_field} must be 0 or between {monthly_rate_min_positive} and "
            f"{monthly_rate_max} a month, got {rate}"
        )


def _interest_fen(balance_fen: int, monthly_rate: Decimal) -> int:
    with localcontext(prec=decimal_prec):
        return round_half_up(balance_fen * monthly_rate)


def _even_parts(total_fen: int, count: int) -> list[int]:
    # The domain's schedules put the odd fen in the last part (33333 / 33333 / 33334), not
    # wherever the largest remainder would.
    base = total_fen // count
    return [base] * (count - 1) + [total_fen - base * (count - 1)]


def annuity_instalment_fen(principal_fen: int, monthly_rate: Decimal, months: int) -> int:
    """The level instalment P r (1+r)^n / ((1+r)^n - 1), half-up to the fen (P // n at r = 0)."""
    _validate(principal_fen, monthly_rate, months, rate_field="monthly_rate", months_field="months")
    if monthly_rate == 0:
        return principal_fen // months
    with localcontext(prec=decimal_prec):
        growth = (1 + monthly_rate) ** months
        # P r g / (g - 1) written as P r + P r / (g - 1): the first interest P r is exact, so
        # when g is huge the instalment cannot round below it (99 fen at 50% a month for 360
        # months is 49.5 plus a hair, which must become 50, not 49).
        first_interest = principal_fen * monthly_rate
        return round_half_up(first_interest + first_interest / (growth - 1))


def _build(start_date: date, parts: list[tuple[int, int, int]]) -> list[Instalment]:
    return [
        Instalment(number, add_months(start_date, number), principal_fen, interest_fen, fee_fen)
        for number, (principal_fen, interest_fen, fee_fen) in enumerate(parts, start=1)
    ]


def annuity_schedule(
    principal_fen: int, monthly_rate: Decimal, months: int, start_date: date
) -> list[Instalment]:
    """Equal instalments; interest on the balance, the last period clears what is left."""
    instalment_fen = annuity_instalment_fen(principal_fen, monthly_rate, months)
    balance_fen = principal_fen
    parts: list[tuple[int, int, int]] = []
    for number in range(1, months + 1):
        interest_fen = _interest_fen(balance_fen, monthly_rate)
        if number == months:
            principal_fen_k = balance_fen
        else:
            # On a tiny loan the instalment rounded up can repay the balance early; a period
            # never repays more than is outstanding, so no principal part goes negative.
            principal_fen_k = min(instalment_fen - interest_fen, balance_fen)
        assert principal_fen_k >= 0, "interest exceeded the instalment"
        parts.append((principal_fen_k, interest_fen, 0))
        balance_fen -= principal_fen_k
    assert balance_fen == 0, "annuity schedule left principal unpaid"
    return _build(start_date, parts)


def equal_principal_schedule(
    principal_fen: int, monthly_rate: Decimal, months: int, start_date: date
) -> list[Instalment]:
    """Equal principal parts (odd fen last) plus interest on the balance outstanding."""
    _validate(principal_fen, monthly_rate, months, rate_field="monthly_rate", months_field="months")
    balance_fen = principal_fen
    parts: list[tuple[int, int, int]] = []
    for principal_fen_k in _even_parts(principal_fen, months):
        parts.append((principal_fen_k, _interest_fen(balance_fen, monthly_rate), 0))
        balance_fen -= principal_fen_k
    return _build(start_date, parts)


def instalment_conversion_schedule(
    principal_fen: int, monthly_fee_rate: Decimal, instalments: int, start_date: date
) -> list[Instalment]:
    """A purchase converted into instalments: the fee is charged on the original principal.

    That is how the consumer-credit product prices it (a flat fee per period, not interest on
    a falling balance), so every period carries the same fee.
    """
    _validate(
        principal_fen, monthly_fee_rate, instalments,
        rate_field="monthly_fee_rate", months_field="instalments",
    )
    fee_fen = _interest_fen(principal_fen, monthly_fee_rate)
    parts = [(part, 0, fee_fen) for part in _even_parts(principal_fen, instalments)]
    return _build(start_date, parts)
