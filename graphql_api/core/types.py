"""Money, Balance, Account, Transaction, Entry, Hold and their connections.

Objects wrap the core's frozen rows (`row`, private) and resolve related objects through the
request's DataLoaders, so a page costs a constant number of queries however many nodes it has.
Holders see only their own accounts: a transaction shows them only the legs on those accounts.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from graphql_api.context import can_see, context_of, page_size, principal_of
from graphql_api.core import loaders
from graphql_api.scalars import JSON, DateTime, MinorUnits
from ledger import accounts as core_accounts
from ledger import balances as core_balances
from ledger import journal as core_journal
from ledger.cursors import decode_cursor, encode_cursor, instant_of_micros
from ledger.epoch import epoch_us
from ledger.errors import ValidationError
from ledger.money import Money as CoreMoney
from ledger.tokens import Role

if TYPE_CHECKING:
    from graphql_api.core.account_history import LimitChangeConnection, StatusChangeConnection

__all__ = [
    "AccountType", "Side", "Layer", "HoldStatus", "AccountStatus", "Money", "Balance", "Account",
    "Transaction", "Entry", "Hold", "PageInfo", "EntryEdge", "EntryConnection", "AccountEdge",
    "AccountConnection", "parse_id", "load_account", "visible_transaction",
]


# The schema's enums are the core's own, so a value crosses the boundary unchanged.
# strawberry.enum marks the class in place; the plain aliases are what mypy reads as types.
AccountType = core_accounts.AccountType
Side = core_accounts.Side
HoldStatus = core_journal.HoldStatus
strawberry.enum(AccountType, name="AccountType")
strawberry.enum(Side, name="Side")
strawberry.enum(HoldStatus, name="HoldStatus")


@strawberry.enum(description="ACTIVE takes postings; FROZEN and CLOSED take none (a hold may still be "
                             "voided); CLOSED needs a zero balance and no open hold.")
class AccountStatus(enum.Enum):
    # The values are the core's (ledger.accounts.AccountStatus); the schema says ACTIVE for "open".
    ACTIVE = core_accounts.AccountStatus.OPEN.value
    FROZEN = core_accounts.AccountStatus.FROZEN.value
    CLOSED = core_accounts.AccountStatus.CLOSED.value

    @property
    def core(self) -> core_accounts.AccountStatus:
        return core_accounts.AccountStatus(self.value)


@strawberry.enum
class Layer(enum.Enum):
    POSTED = "posted"
    PENDING = "pending"


def _optional_minor_units(value: int | None) -> MinorUnits | None:
    return None if value is None else MinorUnits(value)


def parse_id(value: str, field: str) -> int:
    """An ID argument as the bigint it names; anything else is a ValidationError."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or not 0 < len(value) <= 19:
        raise ValidationError(f"{field} must be an id such as \"42\", got {str(value)[:40]!r}", field=field)
    number = int(value)
    if not 1 <= number <= 2**63 - 1:
        raise ValidationError(f"{field} is out of range", field=field)
    return number


@strawberry.type(description="An amount of money: integer minor units and a currency.")
class Money:
    amount: MinorUnits
    currency: str

    @strawberry.field(description='For people, e.g. "1,234.56 CNY"; exact, never rounded.')
    def formatted(self) -> str:
        return CoreMoney(self.amount, self.currency).formatted()


@strawberry.type(description="Balances on the account's normal side (a wallet with 100 credited shows +100).")
class Balance:
    posted: Money
    pending: Money = strawberry.field(description="Posted plus every open hold, as if each were posted.")
    available: Money = strawberry.field(description="Posted minus outgoing open holds.")

    @classmethod
    def of(cls, balance: core_balances.Balance) -> Balance:
        currency = balance.currency
        # int(): the core's sums can come back as integral Decimals (SQL numeric); exact either way.
        return cls(posted=Money(amount=MinorUnits(int(balance.posted)), currency=currency),
                   pending=Money(amount=MinorUnits(int(balance.pending)), currency=currency),
                   available=Money(amount=MinorUnits(int(balance.available)), currency=currency))


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, cursors: list[str], has_next_page: bool, after: str | None) -> PageInfo:
        # An empty page (first: 0) ends where it began: following its endCursor continues from
        # `after`, where a null would start the listing over.
        return cls(has_next_page=has_next_page, has_previous_page=after is not None,
                   start_cursor=cursors[0] if cursors else None, end_cursor=cursors[-1] if cursors else after)


@strawberry.type
class Account:
    row: strawberry.Private[core_accounts.Account]
    id: strawberry.ID
    code: str
    name: str
    type: AccountType
    normal_side: Side
    currency: str
    holder_id: str | None
    status: AccountStatus
    min_balance: MinorUnits | None
    max_balance: MinorUnits | None
    metadata: JSON
    created_at: datetime

    @classmethod
    def of(cls, row: core_accounts.Account) -> Account:
        return cls(row=row, id=strawberry.ID(str(row.id)), code=row.code, name=row.name, type=AccountType(row.type),
                   normal_side=Side(row.normal_side), currency=row.currency, holder_id=row.holder_id,
                   status=AccountStatus(row.status), min_balance=_optional_minor_units(row.min_balance),
                   max_balance=_optional_minor_units(row.max_balance), metadata=JSON(row.metadata),
                   created_at=row.created_at)

    @strawberry.field(description="Now, or as of an effective time, or as known at a recorded time, or both.")
    async def balance(self, info: Info, as_of: DateTime | None = None,
                      known_at: DateTime | None = None) -> Balance:
        context = context_of(info)
        if as_of is None and known_at is None:
            found = await context.load(loaders.balances_by_account, self.row.id)
        else:
            found = await context.load(loaders.balances_at, (self.row.id, as_of, known_at))
        return Balance.of(found)

    @strawberry.field(description="Its status changes, newest first (the first one is its opening).")
    async def status_history(
        self, info: Info, first: int | None = None, after: str | None = None,
    ) -> Annotated[StatusChangeConnection, strawberry.lazy("graphql_api.core.account_history")]:
        from graphql_api.core.account_history import read_status_history  # it builds on this module's types

        return await read_status_history(info, self.row.id, first, after)

    @strawberry.field(description="The versions of its limits, newest first (the first one is those it was "
                                  "created with); each applies to postings from its changedAt on.")
    async def limit_history(
        self, info: Info, first: int | None = None, after: str | None = None,
    ) -> Annotated[LimitChangeConnection, strawberry.lazy("graphql_api.core.account_history")]:
        from graphql_api.core.account_history import read_limit_history

        return await read_limit_history(info, self.row.id, first, after)

    @strawberry.field(description="Entries of both layers in effective order, [from, to), keyset-paginated.")
    async def entries(
        self, info: Info, first: int | None = None, after: str | None = None,
        from_: Annotated[DateTime | None, strawberry.argument(name="from")] = None,
        to: DateTime | None = None,
    ) -> EntryConnection:
        size = page_size(info, first)
        position = None
        if after is not None:
            decoded = decode_cursor(after, fields={"at": int, "id": int})
            position = (instant_of_micros(decoded["at"]), decoded["id"])
        rows = await context_of(info).run(core_journal.entries_of_account, self.row.id, start=from_, end=to,
                                          after=position, limit=size + 1)
        edges = [EntryEdge(cursor=encode_cursor({"at": epoch_us(e.effective_at), "id": e.id}), node=Entry.of(e))
                 for e in rows[:size]]
        return EntryConnection(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], len(rows) > size, after))


@strawberry.type
class Entry:
    row: strawberry.Private[core_journal.Entry]
    id: strawberry.ID
    side: Side
    amount: Money
    layer: Layer
    effective_at: datetime
    recorded_at: datetime
    account_version: int
    balance_after: Money = strawberry.field(
        description="The account's balance on its layer after this entry: posted for posted entries, "
                    "pending (posted plus open holds) for pending ones.")
    posted_balance_after: Money
    pending_balance_after: Money

    @classmethod
    def of(cls, row: core_journal.Entry) -> Entry:
        currency = row.currency
        after = row.posted_balance_after if row.layer == "posted" else row.pending_balance_after
        return cls(row=row, id=strawberry.ID(str(row.id)), side=Side(row.side),
                   amount=Money(amount=MinorUnits(row.amount), currency=currency), layer=Layer(row.layer),
                   effective_at=row.effective_at, recorded_at=row.recorded_at, account_version=row.account_version,
                   balance_after=Money(amount=MinorUnits(after), currency=currency),
                   posted_balance_after=Money(amount=MinorUnits(row.posted_balance_after), currency=currency),
                   pending_balance_after=Money(amount=MinorUnits(row.pending_balance_after), currency=currency))

    @strawberry.field
    async def transaction(self, info: Info) -> Transaction:
        row = await context_of(info).load(loaders.transactions_by_id, self.row.transaction_id)
        return Transaction.of(row)

    @strawberry.field
    async def account(self, info: Info) -> Account:
        row = await context_of(info).load(loaders.accounts_by_id, self.row.account_id)
        return Account.of(row)


@strawberry.type
class Transaction:
    row: strawberry.Private[core_journal.Transaction]
    id: strawberry.ID
    idempotency_key: str
    kind: str
    description: str
    effective_at: datetime
    recorded_at: datetime
    metadata: JSON
    is_hold: bool
    expires_at: datetime | None

    @classmethod
    def of(cls, row: core_journal.Transaction) -> Transaction:
        return cls(row=row, id=strawberry.ID(str(row.id)), idempotency_key=row.idempotency_key, kind=row.kind,
                   description=row.description, effective_at=row.effective_at, recorded_at=row.recorded_at,
                   metadata=JSON(row.metadata), is_hold=row.is_hold, expires_at=row.expires_at)

    @strawberry.field(description="Its legs; a holder sees only the legs on its own accounts.")
    async def entries(self, info: Info) -> list[Entry]:
        rows = await context_of(info).load(loaders.entries_by_transaction, self.row.id) or []
        if principal_of(info).role is Role.HOLDER:
            rows = await _visible_entries(info, rows)
        return [Entry.of(row) for row in rows]

    @strawberry.field(description="The transaction this one reverses.")
    async def reverses(self, info: Info) -> Transaction | None:
        return await _transaction_or_none(info, self.row.reverses_id)

    @strawberry.field(description="The transaction that reversed this one.")
    async def reversed_by(self, info: Info) -> Transaction | None:
        return await _transaction_or_none(info, self.row.reversed_by_id)

    @strawberry.field(description="The hold this transaction is, when it is one.")
    async def hold(self, info: Info) -> Hold | None:
        if not self.row.is_hold:
            return None
        return Hold.of(await context_of(info).load(loaders.holds_by_id, self.row.id))

    @strawberry.field(description="The hold this transaction posted or voided.")
    async def resolves_hold(self, info: Info) -> Hold | None:
        if self.row.resolves_hold_id is None:
            return None
        return Hold.of(await context_of(info).load(loaders.holds_by_id, self.row.resolves_hold_id))


@strawberry.type
class Hold:
    state: strawberry.Private[core_journal.HoldState]
    id: strawberry.ID
    status: HoldStatus
    amount: Money
    expires_at: datetime | None

    @classmethod
    def of(cls, state: core_journal.HoldState) -> Hold:
        return cls(state=state, id=strawberry.ID(str(state.id)), status=state.status,
                   amount=Money(amount=MinorUnits(state.amount), currency=state.currency), expires_at=state.expires_at)

    @strawberry.field(description="The pending transaction that is the hold.")
    async def transaction(self, info: Info) -> Transaction:
        return Transaction.of(await context_of(info).load(loaders.transactions_by_id, self.state.id))

    @strawberry.field(description="The transaction that posted or voided it.")
    async def resolved_by(self, info: Info) -> Transaction | None:
        return await _transaction_or_none(info, self.state.resolved_by_id)


@strawberry.type
class EntryEdge:
    cursor: str
    node: Entry


@strawberry.type
class EntryConnection:
    edges: list[EntryEdge]
    page_info: PageInfo


@strawberry.type
class AccountEdge:
    cursor: str
    node: Account


@strawberry.type
class AccountConnection:
    edges: list[AccountEdge]
    page_info: PageInfo


async def _visible_entries(info: Info, rows: list[core_journal.Entry]) -> list[core_journal.Entry]:
    accounts = await context_of(info).loader(loaders.accounts_by_id).load_many([row.account_id for row in rows])
    return [row for row, account in zip(rows, accounts, strict=True) if can_see(info, account)]


async def visible_transaction(info: Info, transaction_id: int | None) -> core_journal.Transaction | None:
    """The transaction, if the caller may see it: holders only those touching their accounts."""
    if transaction_id is None:
        return None
    context = context_of(info)
    row = await context.load(loaders.transactions_by_id, transaction_id)
    if row is None or principal_of(info).role is not Role.HOLDER:
        return row  # type: ignore[no-any-return]
    entries = await context.load(loaders.entries_by_transaction, transaction_id) or []
    return row if await _visible_entries(info, entries) else None


async def _transaction_or_none(info: Info, transaction_id: int | None) -> Transaction | None:
    row = await visible_transaction(info, transaction_id)
    return Transaction.of(row) if row is not None else None


async def load_account(info: Info, code: str) -> core_accounts.Account | None:
    """The account with this code if the caller may see it, else None (as if it did not exist).
    Its current balance comes along in the same trip and waits in the request's balance loader."""
    context = context_of(info)
    # Straight to the read gatherer (graphql_api/read_gather.py), which batches the codes of every
    # request asking at once, this one's included: a DataLoader of the request's own would only
    # add turns of the event loop (about a tenth of a balance query's CPU).
    found = (await context.read_many(loaders.accounts_with_balance_by_code, [code])).get(code)
    if found is None or not can_see(info, found[0]):
        return None
    row, current = found
    context.loader(loaders.accounts_by_id).prime(row.id, row)
    context.loader(loaders.balances_by_account).prime(row.id, current)
    return row  # type: ignore[no-any-return]
