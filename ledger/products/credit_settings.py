"""Consumer credit's product settings (table `ledger.credit_settings`) and its enumerations.

A loan copies the terms it depends on (its late-fee rate) when it opens, so changing a setting
never changes a loan already open; the payoff policy, provisioning rates and delinquency lines
apply from the next payoff or daily run.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from ledger.errors import ValidationError
from ledger.products.rounding import parse_rate

__all__ = ["Bucket", "Method", "CreditSettings", "load_settings", "set_setting"]


class Bucket(enum.Enum):
    """Delinquency by days past due."""

    CURRENT = "current"
    DPD_1_30 = "1_30"
    DPD_31_60 = "31_60"
    DPD_61_90 = "61_90"
    DPD_91_180 = "91_180"
    WRITE_OFF = "write_off"

    @classmethod
    def of(cls, days_past_due: int, written_off: bool, write_off_dpd: int) -> Bucket:
        if written_off or days_past_due > write_off_dpd:
            return cls.WRITE_OFF
        for bucket, upper in ((cls.CURRENT, 0), (cls.DPD_1_30, 30), (cls.DPD_31_60, 60), (cls.DPD_61_90, 90)):
            if days_past_due <= upper:
                return bucket
        return cls.DPD_91_180


class Method(enum.Enum):
    ANNUITY = "annuity"
    EQUAL_PRINCIPAL = "equal_principal"


@dataclass(frozen=True)
class CreditSettings:
    interest_free_days: int
    late_fee_rate_per_day: Decimal
    late_fee_stop_dpd: int
    write_off_dpd: int
    payoff_remaining_fees: str  # "all": early payoff charges the unbilled fees; "none": waives them
    provision_rates: Mapping[Bucket, Decimal]


_INT_SETTINGS = {"interest_free_days": (0, 365), "late_fee_stop_dpd": (0, 3650), "write_off_dpd": (1, 3650)}
_RATE_SETTINGS = {"late_fee_rate_per_day": Decimal("0.01")} | {
    f"provision_rate_{b.value}": Decimal(1) for b in Bucket if b is not Bucket.WRITE_OFF}


def _parse_setting(name: str, value: str) -> Any:
    if name in _INT_SETTINGS:
        low, high = _INT_SETTINGS[name]
        if not value.isdigit() or not low <= int(value) <= high:
            raise ValidationError(f"{name} must be a whole number from {low} to {high}, got {value!r}", field=name)
        return int(value)
    if name in _RATE_SETTINGS:
        try:
            rate = parse_rate(value, field=name)
        except ValueError as exc:
            raise ValidationError(str(exc), field=name) from None
        if rate > _RATE_SETTINGS[name]:
            raise ValidationError(f"{name} must be at most {_RATE_SETTINGS[name]}, got {value}", field=name)
        return rate
    if name == "payoff_remaining_fees":
        if value not in ("all", "none"):
            raise ValidationError(f"payoff_remaining_fees must be all or none, got {value!r}", field=name)
        return value
    raise ValidationError(f"no credit setting named {name!r}", field="name")


def load_settings(conn: psycopg.Connection[Any]) -> CreditSettings:
    values = {name: _parse_setting(name, value)
              for name, value in conn.execute("select name, value from ledger.credit_settings")}
    return CreditSettings(
        interest_free_days=values["interest_free_days"],
        late_fee_rate_per_day=values["late_fee_rate_per_day"],
        late_fee_stop_dpd=values["late_fee_stop_dpd"],
        write_off_dpd=values["write_off_dpd"],
        payoff_remaining_fees=values["payoff_remaining_fees"],
        provision_rates={b: values[f"provision_rate_{b.value}"] for b in Bucket if b is not Bucket.WRITE_OFF}
        | {Bucket.WRITE_OFF: Decimal(1)},
    )


def set_setting(conn: psycopg.Connection[Any], name: str, value: str) -> CreditSettings:
    """Change a product setting; loans already open keep the terms they were opened with."""
    _parse_setting(name, value)
    conn.execute("update ledger.credit_settings set value = %s where name = %s", (value, name))
    return load_settings(conn)
