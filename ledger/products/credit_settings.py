"""Consumer credit's product settings (versioned by ledger/products/settings.py) and its enumerations.

A loan copies the terms it depends on (its late-fee rate, its due date from the interest-free
days) when it opens, with the values in force on its opening day; changing a setting never
changes a loan already open. The payoff policy applies by the day of the payoff, and the
provisioning rates and delinquency lines by the day of each daily run.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from typing import Any

import psycopg

from ledger import calendar
from ledger.database_transaction import database_transaction
from ledger.errors import ValidationError
from ledger.products import settings as versions
from ledger.products.rounding import decimal_prec, parse_rate

__all__ = ["Bucket", "Method", "CreditSettings", "PRODUCT", "INT_SETTINGS", "RATE_SETTINGS", "FIELD_NAMES",
           "load_settings", "set_settings", "parse_setting", "parse_rate_setting"]

PRODUCT = "credit"


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
    on: date  # the business day these are in force on


# name: (lowest, highest)
INT_SETTINGS = {"interest_free_days": (0, 365), "late_fee_stop_dpd": (0, 3650), "write_off_dpd": (1, 3650)}
# name: (highest, decimal places at most): a rate past its places is refused, never rounded.
RATE_SETTINGS = {"late_fee_rate_per_day": (Decimal("0.01"), 6)} | {
    f"provision_rate_{b.value}": (Decimal(1), 4) for b in Bucket if b is not Bucket.WRITE_OFF}
_PAYOFF_REMAINING_FEES = ("all", "none")
# Each setting's name in the API (`SetCreditSettingsInput`): what a refusal's `field` names.
FIELD_NAMES = {
    "interest_free_days": "interestFreeDays",
    "late_fee_rate_per_day": "lateFeeRatePerDay",
    "late_fee_stop_dpd": "lateFeeStopDpd",
    "write_off_dpd": "writeOffDpd",
    "payoff_remaining_fees": "payoffRemainingFees",
    "provision_rate_current": "provisionRateCurrent",
    "provision_rate_1_30": "provisionRate1To30",
    "provision_rate_31_60": "provisionRate31To60",
    "provision_rate_61_90": "provisionRate61To90",
    "provision_rate_91_180": "provisionRate91To180",
}


def parse_rate_setting(name: str, value: object, *, field: str | None = None) -> Decimal:
    """A rate setting's value (or a loan's own override of it): a decimal string from 0 to its
    highest, with no more decimal places than it keeps."""
    field = field or FIELD_NAMES[name]
    highest, places = RATE_SETTINGS[name]
    try:
        rate = parse_rate(value, field=field)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValidationError(str(exc), field=field) from None
    if rate > highest:
        raise ValidationError(f"{field} must be at most {highest}, got {value}", field=field)
    with localcontext(prec=decimal_prec):  # exact: no rounding (or underflow to 0) on the way
        if rate.quantize(Decimal(1).scaleb(-places)) != rate:
            raise ValidationError(f"{field} has at most {places} decimal places, got {value}", field=field)
        return rate.normalize() if rate else Decimal(0)


def parse_setting(name: str, value: str) -> Any:
    if name in INT_SETTINGS:
        low, high = INT_SETTINGS[name]
        if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 9 \
                or not low <= int(value) <= high:
            raise ValidationError(f"{name} must be a whole number from {low} to {high}, got {value!r}",
                                  field=FIELD_NAMES[name])
        return int(value)
    if name in RATE_SETTINGS:
        return parse_rate_setting(name, value)
    if name == "payoff_remaining_fees":
        if value not in _PAYOFF_REMAINING_FEES:
            raise ValidationError(f"payoff_remaining_fees must be all or none, got {value!r}",
                                  field=FIELD_NAMES[name])
        return value
    raise ValidationError(f"no credit setting named {name!r}", field="name")


def load_settings(conn: psycopg.Connection[Any], on: date | None = None) -> CreditSettings:
    """The settings in force on business day `on` (default today)."""
    day = calendar.today() if on is None else versions.check_day(on)
    values = {name: parse_setting(name, value) for name, value in versions.values_on(conn, PRODUCT, day).items()}
    return CreditSettings(
        interest_free_days=values["interest_free_days"],
        late_fee_rate_per_day=values["late_fee_rate_per_day"],
        late_fee_stop_dpd=values["late_fee_stop_dpd"],
        write_off_dpd=values["write_off_dpd"],
        payoff_remaining_fees=values["payoff_remaining_fees"],
        provision_rates={b: values[f"provision_rate_{b.value}"] for b in Bucket if b is not Bucket.WRITE_OFF}
        | {Bucket.WRITE_OFF: Decimal(1)},
        on=day,
    )


def set_settings(
    conn: psycopg.Connection[Any], changes: Mapping[str, str], effective_from: date, *, recorded_by: str,
    today: Callable[[], date] = calendar.today,
) -> versions.SettingsChange:
    """Schedule new values from `effective_from` on (after today); loans already open keep theirs.

    Values are stored as given after checking, in the form they are shown (a rate normalized:
    "0.00050" is kept as "0.0005"). `today` is the business day the change is judged against.
    """
    day = versions.check_effective_from(effective_from, today=today)
    checked: dict[str, str] = {}
    for name, value in changes.items():
        parsed = parse_setting(name, value)
        checked[name] = format(parsed, "f") if isinstance(parsed, Decimal) else str(parsed)
    with database_transaction(conn):
        return versions.record_change(conn, PRODUCT, checked, day, recorded_by)
