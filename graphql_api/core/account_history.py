"""`Account.statusHistory` and `Account.limitHistory`: the append-only records of an account's
status and limits, newest first, keyset-paginated on the record's id (unsigned cursors: the id is
only a position, checked again by the query, so an edited cursor can only move within the same
account's history, which the caller may read anyway)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, page_size
from graphql_api.core.types import AccountStatus, PageInfo
from graphql_api.scalars import MinorUnits
from ledger import account_lifecycle as core_lifecycle
from ledger.cursors import decode_cursor, encode_cursor

__all__ = ["StatusChange", "StatusChangeConnection", "LimitChange", "LimitChangeConnection",
           "read_status_history", "read_limit_history"]


@strawberry.type(description="One change of an account's status: the status it took, why and when.")
class StatusChange:
    id: strawberry.ID
    status: AccountStatus
    reason: str
    changed_at: datetime


@strawberry.type
class StatusChangeEdge:
    cursor: str
    node: StatusChange


@strawberry.type
class StatusChangeConnection:
    edges: list[StatusChangeEdge]
    page_info: PageInfo


@strawberry.type(description="One version of an account's limits (null: unbounded), from when it applied.")
class LimitChange:
    id: strawberry.ID
    min_balance: MinorUnits | None
    max_balance: MinorUnits | None
    changed_at: datetime


@strawberry.type
class LimitChangeEdge:
    cursor: str
    node: LimitChange


@strawberry.type
class LimitChangeConnection:
    edges: list[LimitChangeEdge]
    page_info: PageInfo


def _before(after: str | None) -> int | None:
    return decode_cursor(after, fields={"id": int})["id"] if after is not None else None


async def read_status_history(info: Info, account_id: int, first: int | None, after: str | None
                              ) -> StatusChangeConnection:
    size = page_size(info, first)
    rows = await context_of(info).run(core_lifecycle.status_history, account_id, before_id=_before(after),
                                      limit=size + 1)
    edges = [StatusChangeEdge(cursor=encode_cursor({"id": r.id}), node=StatusChange(
        id=strawberry.ID(str(r.id)), status=AccountStatus(r.status), reason=r.reason, changed_at=r.changed_at))
        for r in rows[:size]]
    return StatusChangeConnection(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], len(rows) > size,
                                                                     after))


async def read_limit_history(info: Info, account_id: int, first: int | None, after: str | None
                             ) -> LimitChangeConnection:
    size = page_size(info, first)
    rows = await context_of(info).run(core_lifecycle.limit_history, account_id, before_id=_before(after),
                                      limit=size + 1)
    edges = [LimitChangeEdge(cursor=encode_cursor({"id": r.id}), node=LimitChange(
        id=strawberry.ID(str(r.id)),
        min_balance=None if r.min_balance is None else MinorUnits(r.min_balance),
        max_balance=None if r.max_balance is None else MinorUnits(r.max_balance), changed_at=r.changed_at))
        for r in rows[:size]]
    return LimitChangeConnection(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], len(rows) > size,
                                                                    after))
