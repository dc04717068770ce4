"""Published figures the tests check the products against (files in tests/data/, sources named in
tests/data/README.md)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from ledger.products.fund_math import parse_income_per_10k

YUEBAO_CSV = Path(__file__).resolve().parent / "data" / "yuebao_2013_2014.csv"


@dataclass(frozen=True)
class FundDay:
    day: date
    income_per_10k: Decimal       # yuan per 10,000 units, as published (4 decimals)
    seven_day_yield_percent: Decimal  # as published, trailing zeros dropped (6.17 is 6.170)


def yuebao_days() -> list[FundDay]:
    """Every published day of the Yu'ebao series, in date order."""
    with YUEBAO_CSV.open(newline="", encoding="utf-8") as handle:
        return [FundDay(datetime.strptime(row["mfd_date"], "%Y%m%d").date(),
                        parse_income_per_10k(row["mfd_daily_yield"]), Decimal(row["mfd_7daily_yield"]))
                for row in csv.DictReader(handle)]


def yuebao_incomes() -> dict[date, Decimal]:
    """Income per 10,000 units by day."""
    return {day.day: day.income_per_10k for day in yuebao_days()}
