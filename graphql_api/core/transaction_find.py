"""`transactions(filter, first, after)`: finding transactions by kind, account, metadata and time.

Newest first, keyset-paginated on the id, or on the range's time and the id when a time range
is given (ledger/transaction_search.py). The cursor
is unsigned: it carries only a position, and every filter and the caller's visibility are applied
again on each page, so an edited cursor can skip transactions but never show one the caller may
not see (docs/design.md, "Cursors"). A holder finds only transactions touching its own accounts.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, page_size, principal_of
from graphql_api.core.types import PageInfo, Transaction
from graphql_api.scalars import JSON, DateTime
from ledger import transaction_search as core_search
from ledger.cursors import decode_cursor, encode_cursor
from ledger.tokens import Role

__all__ = ["TransactionFilter", "TransactionSearchEdge", "TransactionSearchConnection", "TransactionFindQuery"]


@strawberry.input(description="Every filter given must hold; times are half-open ranges [from, to).")
class TransactionFilter:
    kind: str | None = None
    account_code: str | None = strawberry.field(default=None, description="Transactions with a leg on it.")
    metadata: JSON | None = strawberry.field(
        default=None, description="A JSON object the transaction's metadata contains (at most 4096 bytes, "
                                  "8 levels deep).")
    effective_from: DateTime | None = None
    effective_to: DateTime | None = None
    recorded_from: DateTime | None = None
    recorded_to: DateTime | None = None


@strawberry.type
class TransactionSearchEdge:
    cursor: str
    node: Transaction


@strawberry.type
class TransactionSearchConnection:
    edges: list[TransactionSearchEdge]
    page_info: PageInfo


@strawberry.type
class TransactionFindQuery:
    @strawberry.field(description="Transactions matching a filter, newest first (by id; with a time range and "
                                  "no accountCode, by that time); a holder sees only those touching its own "
                                  "accounts.")
    async def transactions(self, info: Info, filter: TransactionFilter | None = None, first: int | None = None,
                           after: str | None = None) -> TransactionSearchConnection:
        size = page_size(info, first)
        principal = principal_of(info)
        given = filter or TransactionFilter()
        wanted = core_search.TransactionFilter(
            kind=given.kind, account_code=given.account_code,
            metadata=given.metadata,  # any JSON value: the core refuses anything but a bounded object
            effective_from=given.effective_from, effective_to=given.effective_to,
            recorded_from=given.recorded_from, recorded_to=given.recorded_to,
            holder_id=principal.holder_id if principal.role is Role.HOLDER else None)
        position = decode_cursor(after, fields=core_search.position_fields(wanted)) if after is not None else None
        context = context_of(info)
        rows = await context.run(core_search.find_transactions, wanted, after=position, limit=size + 1)
        edges = [TransactionSearchEdge(cursor=encode_cursor(core_search.position_of(wanted, row)),
                                       node=Transaction.of(row)) for row in rows[:size]]
        return TransactionSearchConnection(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], len(rows) > size,
                                                                        after))
