"""Queries of the audit area: `journal`, `auditDigest`, `reconciliation(id)`, `statementDifferences`.

Who may read: the journal, digests and reconciliation runs span every account, so holders may
not (Forbidden); admin, operator and auditor may. `statementDifferences` follows the statement's
rule: a holder for its own accounts only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import psycopg
import strawberry
from strawberry.types import Info

from graphql_api.audit.types import (
    AuditDigest,
    Reconciliation,
    StatementDifferences,
    TransactionConnection,
    TransactionEdge,
)
from graphql_api.context import context_of, page_size, require_role
from graphql_api.core import loaders
from graphql_api.core.types import Account, PageInfo, Transaction, load_account, parse_id
from graphql_api.scalars import DateTime
from ledger import feed as core_feed
from ledger import reconcile as core_reconcile
from ledger.checkpoints import take_digest
from ledger.errors import AccountNotFound
from ledger.statement_export import Statement as CoreStatement
from ledger.statement_export import cut_statement
from ledger.tokens import Role

__all__ = ["AuditQuery", "READERS", "cut_in_one_snapshot"]

READERS = (Role.ADMIN, Role.OPERATOR, Role.AUDITOR)


def cut_in_one_snapshot(conn: psycopg.Connection[Any], code: str, start: datetime, end: datetime,
                        known_at: datetime | None, with_lines: bool = True) -> CoreStatement:
    """Every page, the totals and the later changes of a statement read from one snapshot
    (cut_statement takes it on the pooled autocommit connection)."""
    return cut_statement(conn, code, start, end, known_at=known_at, with_lines=with_lines)


def _reconciliation(conn: psycopg.Connection[Any], run_id: int) -> core_reconcile.Reconciliation | None:
    try:
        return core_reconcile.get_reconciliation(conn, run_id)
    except core_reconcile.ReconciliationNotFound:
        return None


@strawberry.type
class AuditQuery:
    @strawberry.field(description="Every transaction with its entries in an order a script can follow with its "
                                  "cursor and never miss one (admin, operator, auditor).")
    async def journal(self, info: Info, after: str | None = None, first: int | None = None
                      ) -> TransactionConnection:
        require_role(info, *READERS)
        size = page_size(info, first)
        if size == 0:
            return TransactionConnection(edges=[], page_info=PageInfo.of([], False, after))
        context = context_of(info)
        page = await context.run(core_feed.journal_page, after=after, first=size)
        entries = context.loader(loaders.entries_by_transaction)
        transactions = context.loader(loaders.transactions_by_id)
        edges = []
        for item in page.items:
            entries.prime(item.transaction.id, item.entries)
            transactions.prime(item.transaction.id, item.transaction)
            edges.append(TransactionEdge(cursor=item.cursor, node=Transaction.of(item.transaction),
                                         created_xact=str(item.created_xact)))
        info_ = PageInfo.of([e.cursor for e in edges], page.has_next_page, after)
        if not edges:  # an empty page still tells the follower where to resume
            info_.end_cursor = after
        return TransactionConnection(edges=edges, page_info=info_)

    @strawberry.field(description="A digest over every account's chain head, with its journal position "
                                  "(admin, operator, auditor).")
    async def audit_digest(self, info: Info) -> AuditDigest:
        require_role(info, *READERS)
        return AuditDigest.of(await context_of(info).run(take_digest))

    @strawberry.field(description="A stored bank reconciliation run; null when there is none "
                                  "(admin, operator, auditor).")
    async def reconciliation(self, info: Info, id: strawberry.ID) -> Reconciliation | None:
        require_role(info, *READERS)
        run = await context_of(info).run(_reconciliation, parse_id(id, "id"))
        if run is None:
            return None
        row = await load_account(info, run.account_code)
        assert row is not None
        return Reconciliation.of(run, Account.of(row))

    @strawberry.field(description="What postings recorded after `knownAt` (backdated into or before the period) "
                                  "change in the statement of [from, to) cut at `knownAt`.")
    async def statement_differences(
        self, info: Info, account_code: str, from_: Annotated[DateTime, strawberry.argument(name="from")],
        to: DateTime, known_at: DateTime,
    ) -> StatementDifferences:
        row = await load_account(info, account_code)
        if row is None:
            raise AccountNotFound(f"no account with code {account_code}", account=account_code)
        statement = await context_of(info).run(cut_in_one_snapshot, account_code, from_, to, known_at, False)
        return StatementDifferences.of(statement)
