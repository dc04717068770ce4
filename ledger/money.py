"""Amounts are integers of minor units (fen for CNY); never floats.

`parse_amount` is the one gate every amount from outside passes: it refuses bools, floats,
non-integers, zero, negatives and anything past 64 bits with a ValidationError naming the field.
An amount written as text is in its one canonical form (`amount_text_problem`): digits with an
optional '-', no '+', no leading zeros, no "-0", nothing around it; the API's `MinorUnits` scalar
applies the same rule, so "0001" and "1" are never two spellings of one request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from ledger.errors import ValidationError

__all__ = ["Money", "amount_max", "amount_text_problem", "parse_amount", "parse_signed_amount", "parse_currency",
           "minor_digits", "grouped_units"]

amount_max = 2**63 - 1  # PostgreSQL bigint
_INTEGER_TEXT = re.compile(r"0|-?[1-9][0-9]*")  # canonical: no '+', leading zero or "-0"
_DIGITS_MAX = len(str(amount_max))
_CURRENCY = re.compile(r"[A-Z]{3}")

# Minor-unit exponents (ISO 4217) of the currencies the platform handles; others default to 2.
_MINOR_DIGITS = {"CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "JPY": 0, "KRW": 0}


def minor_digits(currency: str) -> int:
    return _MINOR_DIGITS.get(currency, 2)


def grouped_units(amount_minor: int, currency: str) -> str:
    """Minor units as currency units with thousands separators: 123456789 CNY -> '1,234,567.89';
    exact, from integers."""
    digits = minor_digits(currency)
    sign = "-" if amount_minor < 0 else ""
    return f"{sign}{Decimal(abs(amount_minor)).scaleb(-digits):,.{digits}f}"


def amount_text_problem(text: str) -> str | None:
    """What is wrong with `text` as a signed amount of minor units written out, or None: the
    canonical decimal form of an integer from -amount_max to amount_max."""
    if not _INTEGER_TEXT.fullmatch(text):
        return ("must be a whole number of minor units written in digits with an optional '-' "
                "(no '+', no leading zeros, no \"-0\", nothing around it)")
    # The length first: int() of thousands of digits would be slow, or raise.
    if len(text.lstrip("-")) > _DIGITS_MAX or not -amount_max <= int(text) <= amount_max:
        return f"is out of range: it does not fit in 64 bits (from -{amount_max} to {amount_max})"
    return None


def parse_signed_amount(value: object, *, field: str = "amount") -> int:
    """An integer of minor units within bigint range, given as int or decimal-digit string."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValidationError(
            f"{field} must be an integer number of minor units, got {type(value).__name__} {value!r}",
            field=field,
        )
    if isinstance(value, str):
        problem = amount_text_problem(value)
        if problem is not None:
            raise ValidationError(f"{field} {problem}, got {value[:40]!r}", field=field)
        value = int(value)
    if not -amount_max <= value <= amount_max:
        raise ValidationError(f"{field} {value} does not fit in 64 bits (at most {amount_max})", field=field)
    return value


def parse_amount(value: object, *, field: str = "amount") -> int:
    """A positive amount of minor units (a posting leg, a hold, a payment)."""
    amount = parse_signed_amount(value, field=field)
    if amount <= 0:
        raise ValidationError(f"{field} must be positive, got {amount}", field=field)
    return amount


def parse_currency(value: object, *, field: str = "currency") -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise ValidationError(f"{field} must be a three-letter ISO 4217 code, got {value!r}", field=field)
    return value


@dataclass(frozen=True)
class Money:
    amount_minor: int
    currency: str

    def formatted(self) -> str:
        """Human form, e.g. '1,234.56 CNY'; exact, from integers."""
        return f"{grouped_units(self.amount_minor, self.currency)} {self.currency}"
