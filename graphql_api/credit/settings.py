"""`creditSettings(on)`, `creditSettingsHistory` and `setCreditSettings`: consumer credit's
product settings, versioned by the business day they take effect from (ledger/products/settings.py).

Every role reads them (they are the terms a customer is offered); only an admin changes them.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, page_size, require_role
from graphql_api.core.types import PageInfo
from graphql_api.credit.types import DelinquencyBucket
from graphql_api.errors import error_result, result_union
from ledger.cursors import decode_cursor, encode_cursor
from ledger.errors import LedgerError
from ledger.products import credit
from ledger.products import settings as versions
from ledger.tokens import Principal, Role

__all__ = ["PayoffRemainingFees", "ProvisionRate", "CreditSettings", "SettingValue", "CreditSettingsChange",
           "SetCreditSettingsInput", "CreditSettingsSet", "SetCreditSettingsResult", "CreditSettingsQuery",
           "CreditSettingsMutation", "SETTINGS_WRITERS", "recorded_by"]

SETTINGS_WRITERS = (Role.ADMIN,)

_NAMES = {name: stored for stored, name in credit.FIELD_NAMES.items()}  # API name -> stored name


@strawberry.enum(description="What an early payoff does with instalment fees not yet billed.")
class PayoffRemainingFees(enum.Enum):
    ALL = "all"
    NONE = "none"


@strawberry.type(description="The share of what a loan owes held as allowance while it is in this bucket.")
class ProvisionRate:
    bucket: DelinquencyBucket
    rate: str


@strawberry.type(description="Consumer credit's settings as in force on one business day.")
class CreditSettings:
    on: date = strawberry.field(description="The business day these are in force on.")
    interest_free_days: int = strawberry.field(description="From a purchase to its due date.")
    late_fee_rate_per_day: str = strawberry.field(description="Of the overdue amount, each day; a loan keeps the "
                                                              "rate in force on the day it opened.")
    late_fee_stop_dpd: int = strawberry.field(description="No late fees once days past due exceed this.")
    write_off_dpd: int = strawberry.field(description="Written off once days past due exceed this.")
    payoff_remaining_fees: PayoffRemainingFees
    provision_rates: list[ProvisionRate]

    @classmethod
    def of(cls, values: credit.CreditSettings) -> CreditSettings:
        return cls(on=values.on, interest_free_days=values.interest_free_days,
                   late_fee_rate_per_day=format(values.late_fee_rate_per_day, "f"),
                   late_fee_stop_dpd=values.late_fee_stop_dpd, write_off_dpd=values.write_off_dpd,
                   payoff_remaining_fees=PayoffRemainingFees(values.payoff_remaining_fees),
                   provision_rates=[ProvisionRate(bucket=bucket, rate=format(rate, "f"))
                                    for bucket, rate in values.provision_rates.items()])


@strawberry.type(description="One setting's value, named as in `SetCreditSettingsInput`.")
class SettingValue:
    name: str
    value: str


@strawberry.type(description="A change of settings: the values it set, in force from `effectiveFrom`.")
class CreditSettingsChange:
    id: strawberry.ID
    effective_from: date
    recorded_at: datetime
    recorded_by: str = strawberry.field(description="`token <id>` of the admin who made it, or `cli`, or "
                                                    "`migration` for the values the product started with.")
    settings: list[SettingValue]

    @classmethod
    def of(cls, change: versions.SettingsChange) -> CreditSettingsChange:
        return cls(id=strawberry.ID(str(change.id)), effective_from=change.effective_from,
                   recorded_at=change.recorded_at, recorded_by=change.recorded_by,
                   settings=[SettingValue(name=credit.FIELD_NAMES.get(name, name), value=value)
                             for name, value in sorted(change.settings.items())])


@strawberry.type
class CreditSettingsChangeEdge:
    cursor: str
    node: CreditSettingsChange


@strawberry.type
class CreditSettingsChangeConnection:
    edges: list[CreditSettingsChangeEdge]
    page_info: PageInfo


@strawberry.input(description="The settings to change (at least one) and the business day they apply from: "
                              "tomorrow at the earliest, at most 366 days ahead. Rates are decimal strings.")
class SetCreditSettingsInput:
    effective_from: date
    interest_free_days: int | None = None
    late_fee_rate_per_day: str | None = strawberry.field(default=None, description="At most 0.01, 6 places.")
    late_fee_stop_dpd: int | None = None
    write_off_dpd: int | None = None
    payoff_remaining_fees: PayoffRemainingFees | None = None
    provision_rate_current: str | None = strawberry.field(default=None, description="At most 1, 4 places.")
    provision_rate_1_to_30: str | None = strawberry.field(default=None, name="provisionRate1To30")
    provision_rate_31_to_60: str | None = strawberry.field(default=None, name="provisionRate31To60")
    provision_rate_61_to_90: str | None = strawberry.field(default=None, name="provisionRate61To90")
    provision_rate_91_to_180: str | None = strawberry.field(default=None, name="provisionRate91To180")

    def changes(self) -> dict[str, str]:
        given = {
            "interestFreeDays": self.interest_free_days, "lateFeeRatePerDay": self.late_fee_rate_per_day,
            "lateFeeStopDpd": self.late_fee_stop_dpd, "writeOffDpd": self.write_off_dpd,
            "payoffRemainingFees": None if self.payoff_remaining_fees is None else self.payoff_remaining_fees.value,
            "provisionRateCurrent": self.provision_rate_current, "provisionRate1To30": self.provision_rate_1_to_30,
            "provisionRate31To60": self.provision_rate_31_to_60, "provisionRate61To90": self.provision_rate_61_to_90,
            "provisionRate91To180": self.provision_rate_91_to_180,
        }
        return {_NAMES[name]: str(value) for name, value in given.items() if value is not None}


@strawberry.type(description="The change recorded, and the settings as they will be in force from its day.")
class CreditSettingsSet:
    change: CreditSettingsChange
    settings: CreditSettings


SetCreditSettingsResult = result_union("SetCreditSettingsResult", CreditSettingsSet)


def recorded_by(principal: Principal) -> str:
    return f"token {principal.token_id}" if principal.token_id is not None else principal.role.value


def _set(conn, changes: dict[str, str], effective_from: date, by: str  # type: ignore[no-untyped-def]
         ) -> tuple[versions.SettingsChange, credit.CreditSettings]:
    change = credit.set_settings(conn, changes, effective_from, recorded_by=by)
    return change, credit.load_settings(conn, change.effective_from)


@strawberry.type
class CreditSettingsQuery:
    @strawberry.field(description="Consumer credit's settings in force on a business day (default today; a "
                                  "later day shows the changes scheduled up to it).")
    async def credit_settings(self, info: Info, on: date | None = None) -> CreditSettings:
        return CreditSettings.of(await context_of(info).run(credit.load_settings, on))

    @strawberry.field(description="Every change of consumer credit's settings, the latest recorded first.")
    async def credit_settings_history(self, info: Info, first: int | None = None,
                                      after: str | None = None) -> CreditSettingsChangeConnection:
        size = page_size(info, first)
        before_id = None if after is None else decode_cursor(after, fields={"id": int})["id"]
        changes = await context_of(info).run(versions.history, credit.PRODUCT, before_id=before_id,
                                             limit=size + 1)
        edges = [CreditSettingsChangeEdge(cursor=encode_cursor({"id": c.id}), node=CreditSettingsChange.of(c))
                 for c in changes[:size]]
        return CreditSettingsChangeConnection(
            edges=edges, page_info=PageInfo.of([e.cursor for e in edges], len(changes) > size, after))


@strawberry.type
class CreditSettingsMutation:
    @strawberry.mutation(description="Change consumer credit's settings from a later business day (admin); loans "
                                     "already open keep their terms.")
    async def set_credit_settings(self, info: Info, input: SetCreditSettingsInput) -> SetCreditSettingsResult:
        try:
            principal = require_role(info, *SETTINGS_WRITERS)
            change, in_force = await context_of(info).run(_set, input.changes(), input.effective_from,
                                                          recorded_by(principal))
            return CreditSettingsSet(change=CreditSettingsChange.of(change), settings=CreditSettings.of(in_force))
        except LedgerError as exc:
            return error_result(exc, SetCreditSettingsResult)
