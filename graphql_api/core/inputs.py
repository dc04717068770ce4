"""Inputs shared by the posting mutations, and their translation to core requests."""

from __future__ import annotations

import strawberry

from graphql_api.core.types import Side
from graphql_api.input_conversion import converted_once
from graphql_api.scalars import MinorUnits
from ledger.accounts import Side as CoreSide
from ledger.posting import Leg

__all__ = ["EntryInput", "legs_of"]


@converted_once
@strawberry.input(description="One leg: an account, a side and a positive amount.")
class EntryInput:
    account_code: str
    side: Side
    amount: MinorUnits


def legs_of(entries: list[EntryInput]) -> list[Leg]:
    return [Leg(entry.account_code, CoreSide(entry.side.value), entry.amount) for entry in entries]

