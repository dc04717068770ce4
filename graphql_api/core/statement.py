"""`Statement`: an account's period, cut at a recorded time so every page agrees.

The resolver reads opening, closing, totals and the page in one snapshot
(`ledger.statement_cut.read_statement`), cut at the journal horizon unless `knownAt` says
otherwise; the cursor carries the running balance and the cut, so a deep page costs what the
first one does and agrees with it.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of
from graphql_api.core import loaders
from graphql_api.core.types import Account, Entry, Money, PageInfo
from graphql_api.scalars import MinorUnits
from ledger.statement_cut import StatementRead

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
    after: strawberry.Private[str | None]
    read: strawberry.Private[StatementRead]

    def _money(self, amount: int) -> Money:
        return Money(amount=MinorUnits(amount), currency=self.account.currency)

    @strawberry.field(description="Posted balance before `from`.")
    def opening(self) -> Money:
        return self._money(self.read.totals.opening)

    @strawberry.field(description="Posted balance at the end of the period.")
    def closing(self) -> Money:
        return self._money(self.read.totals.closing)

    @strawberry.field
    def total_debits(self) -> Money:
        return self._money(self.read.totals.total_debits)

    @strawberry.field
    def total_credits(self) -> Money:
        return self._money(self.read.totals.total_credits)

    @strawberry.field(description="The period's posted entries in effective order with their running balance.")
    async def entries(self, info: Info) -> StatementLineConnection:
        page = self.read.page
        keys = [(self.account.row.id, line.account_version) for line in page.lines]
        rows = await context_of(info).loader(loaders.entries_by_key).load_many(keys)
        edges = [
            StatementLineEdge(cursor=line.cursor, node=StatementLine(
                entry=Entry.of(row), running_balance=self._money(line.running_balance)))
            for line, row in zip(page.lines, rows, strict=True)
        ]
        return StatementLineConnection(
            edges=edges, page_info=PageInfo.of([edge.cursor for edge in edges], page.has_next_page, self.after))
