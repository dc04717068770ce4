"""The core's queries: account, accounts, transaction, statement, trialBalance, rollup."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import psycopg
import strawberry
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

from graphql_api.context import context_of, page_size, principal_of, require_role
from graphql_api.core import loaders
from graphql_api.core.statement import Statement
from graphql_api.core.types import (
    Account,
    AccountConnection,
    AccountEdge,
    Money,
    PageInfo,
    Transaction,
    load_account,
    parse_id,
    visible_transaction,
)
from graphql_api.scalars import JSON, DateTime, MinorUnits
from ledger import accounts as core_accounts
from ledger import balances as core_balances
from ledger import journal as core_journal
from ledger import statement_cut as core_statement_cut
from ledger.cursors import decode_cursor, encode_cursor
from ledger.errors import AccountNotFound, ValidationError
from ledger.tokens import Role

__all__ = ["CoreQuery", "AccountFilter", "TrialBalance", "TrialBalanceLine", "TrialBalanceTotal", "trial_balance_lines_max"]

trial_balance_lines_max = 50_000
_READERS = (Role.ADMIN, Role.OPERATOR, Role.AUDITOR)


@strawberry.type
class TrialBalanceLine:
    account_code: str
    account_id: strawberry.Private[int]
    debit: Money = strawberry.field(description="Posted debits minus credits, when positive.")
    credit: Money = strawberry.field(description="Posted credits minus debits, when positive.")

    @strawberry.field
    async def account(self, info: Info) -> Account:
        return Account.of(await context_of(info).load(loaders.accounts_by_id, self.account_id))


@strawberry.type
class TrialBalanceTotal:
    currency: str
    debits: Money
    credits: Money
    balanced: bool


@strawberry.type(description="Posted balances of every account; per currency, debits equal credits.")
class TrialBalance:
    as_of: datetime | None
    lines: list[TrialBalanceLine]
    totals: list[TrialBalanceTotal]
    balanced: bool


@strawberry.input(description="Every filter given must hold.")
class AccountFilter:
    metadata: JSON | None = strawberry.field(
        default=None, description="A JSON object the account's metadata contains (at most 4096 bytes, 8 levels deep).")


def _trial_balance(conn: psycopg.Connection[Any], as_of: datetime | None) -> TrialBalance:
    rows = core_journal.trial_balance(conn, as_of=as_of)
    if len(rows) > trial_balance_lines_max:
        raise ValidationError(f"the trial balance has more than {trial_balance_lines_max} accounts; "
                              "use rollup by category instead", field="asOf")
    lines = [TrialBalanceLine(account_code=row.code, account_id=row.account_id,
                              debit=Money(amount=MinorUnits(row.debit_balance), currency=row.currency),
                              credit=Money(amount=MinorUnits(row.credit_balance), currency=row.currency)) for row in rows]
    totals = [TrialBalanceTotal(currency=t.currency, debits=Money(amount=MinorUnits(t.debit_total), currency=t.currency),
                                credits=Money(amount=MinorUnits(t.credit_total), currency=t.currency), balanced=t.balanced)
              for t in core_journal.trial_balance_totals(rows)]
    return TrialBalance(as_of=as_of, lines=lines, totals=totals, balanced=all(t.balanced for t in totals))


def _selects_entries(info: Info) -> bool:
    """Whether the statement's lines are asked for (a fragment may ask: read them then too)."""
    return any(not isinstance(selection, SelectedField) or selection.name == "entries"
               for field in info.selected_fields for selection in field.selections)


@strawberry.type
class CoreQuery:
    @strawberry.field(description="The account with this code; null when there is none the caller may see.")
    async def account(self, info: Info, code: str) -> Account | None:
        row = await load_account(info, code)
        return Account.of(row) if row is not None else None

    @strawberry.field(description="Accounts in code order, optionally under a category prefix, of one holder, "
                                  "or whose metadata contains filter.metadata.")
    async def accounts(self, info: Info, prefix: str | None = None, holder_id: str | None = None,
                       first: int | None = None, after: str | None = None,
                       filter: AccountFilter | None = None) -> AccountConnection:
        size = page_size(info, first)
        principal = principal_of(info)
        if principal.role is Role.HOLDER:
            if holder_id is not None and holder_id != principal.holder_id:
                return AccountConnection(edges=[], page_info=PageInfo.of([], False, after))
            holder_id = principal.holder_id
        after_code = decode_cursor(after, fields={"code": str})["code"] if after is not None else None
        context = context_of(info)
        rows = await context.run(core_accounts.list_accounts, prefix=prefix, holder_id=holder_id,
                                 after_code=after_code, limit=size + 1,
                                 metadata=None if filter is None or filter.metadata is None else filter.metadata)
        by_id = context.loader(loaders.accounts_by_id)
        edges = []
        for row in rows[:size]:
            by_id.prime(row.id, row)
            edges.append(AccountEdge(cursor=encode_cursor({"code": row.code}), node=Account.of(row)))
        return AccountConnection(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], len(rows) > size, after))

    @strawberry.field(description="The transaction with this id; null when there is none the caller may see.")
    async def transaction(self, info: Info, id: strawberry.ID) -> Transaction | None:
        row = await visible_transaction(info, parse_id(id, "id"))
        return Transaction.of(row) if row is not None else None

    @strawberry.field(description="An account statement for [from, to), cut at knownAt (default: the journal "
                                  "horizon, up to which the journal is final; a later knownAt is refused).")
    async def statement(
        self, info: Info, account_code: str,
        from_: Annotated[DateTime, strawberry.argument(name="from")], to: DateTime,
        first: int | None = None, after: str | None = None, known_at: DateTime | None = None,
    ) -> Statement:
        row = await load_account(info, account_code)
        if row is None:
            raise AccountNotFound(f"no account with code {account_code}", account=account_code)
        # Later pages read through the cut their cursor carries, so they match the first.
        size = page_size(info, first) if _selects_entries(info) else 0
        read = await context_of(info).run(core_statement_cut.read_statement, row.id, row.currency, from_, to,
                                          first=size, after=after, known_at=known_at)
        return Statement(account=Account.of(row), known_at=read.known_at, after=after, read=read)

    @strawberry.field(description="Posted balances of every account as of an effective time (default: now).")
    async def trial_balance(self, info: Info, as_of: DateTime | None = None) -> TrialBalance:
        require_role(info, *_READERS)
        return await context_of(info).run(_trial_balance, as_of)

    @strawberry.field(description="Posted balance of every account under a code prefix, per currency.")
    async def rollup(self, info: Info, prefix: str, as_of: DateTime | None = None) -> list[Money]:
        require_role(info, *_READERS)
        amounts = await context_of(info).run(core_balances.rollup, prefix, as_of=as_of)
        return [Money(amount=MinorUnits(m.amount_minor), currency=m.currency) for m in amounts]

