"""`Statement`: an account's period, cut at a recorded time so every page agrees.

Opening, closing and totals are computed lazily (once, shared by those four fields); the lines
come a page at a time from `ledger.statements.statement_page`, whose cursor carries the running
balance and the cut, so a deep page costs what the first one does.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Optional

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, page_size
from graphql_api.core import loaders
from graphql_api.core.types import Account, Entry, Money, PageInfo
from graphql_api.scalars import MinorUnits
from ledger import statements as core_statements

__all__ = ["Statement", "StatementLine", "StatementLineEdge", "StatementLineConnection"]


@strawberry.type
class StatementLine:
    entry: Entry
    running_balance: Money


@strawberry.type
class StatementLineEdge:
    cursor: str
    node: StatementLine


@strawberry.type
class StatementLineConnection:
    edges: list[StatementLineEdge]
    page_info: PageInfo


@strawberry.type(description="An account's posted entries in [from, to), as known at `knownAt`.")
class Statement:
    account: Account
    known_at: datetime = strawberry.field(description="The recorded-time cut: later postings are not in it.")
    period_from: strawberry.Private[datetime]
    period_to: strawberry.Private[datetime]
    first: strawberry.Private[Optional[int]]
    after: strawberry.Private[Optional[str]]
    totals_task: strawberry.Private[Optional["asyncio.Future[core_statements.StatementTotals]"]] = None

    async def _totals(self, info: Info) -> core_statements.StatementTotals:
        if self.totals_task is None:
            self.totals_task = asyncio.ensure_future(context_of(info).run(
                core_statements.statement_totals, self.account.row.id, self.period_from, self.period_to,
                self.known_at))
        return await self.totals_task

    def _money(self, amount: int) -> Money:
        return Money(amount=MinorUnits(amount), currency=self.account.currency)

    @strawberry.field(description="Posted balance before `from`.")
    async def opening(self, info: Info) -> Money:
        return self._money((await self._totals(info)).opening)

    @strawberry.field(description="Posted balance at the end of the period.")
    async def closing(self, info: Info) -> Money:
        return self._money((await self._totals(info)).closing)

    @strawberry.field
    async def total_debits(self, info: Info) -> Money:
        return self._money((await self._totals(info)).total_debits)

    @strawberry.field
    async def total_credits(self, info: Info) -> Money:
        return self._money((await self._totals(info)).total_credits)

    @strawberry.field(description="The period's posted entries in effective order with their running balance.")
    async def entries(self, info: Info) -> StatementLineConnection:
        context = context_of(info)
        size = page_size(info, self.first)
        page = await context.run(core_statements.statement_page, self.account.row.id, self.account.currency,
                                 self.period_from, self.period_to, first=size, after=self.after,
                                 known_at=self.known_at)
        keys = [(self.account.row.id, line.account_version) for line in page.lines]
        rows = await context.loader(loaders.entries_by_key).load_many(keys)
        edges = [
            StatementLineEdge(cursor=line.cursor, node=StatementLine(
                entry=Entry.of(row), running_balance=self._money(line.running_balance)))
            for line, row in zip(page.lines, rows)
        ]
        return StatementLineConnection(
            edges=edges, page_info=PageInfo.of([edge.cursor for edge in edges], page.has_next_page, self.after))
