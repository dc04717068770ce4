"""Accounts: code (a colon path), type, normal side, currency, holder, limits, status."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from ledger.errors import AccountNotFound, ValidationError
from ledger.filters import check_containment
from ledger.money import parse_currency, parse_signed_amount
from ledger.text import check_label

__all__ = [
    "AccountType",
    "Side",
    "AccountStatus",
    "Account",
    "NewAccount",
    "normal_side_of",
    "create_account",
    "get_account",
    "get_accounts",
    "list_accounts",
    "accounts_query",
    "ACCOUNT_COLUMNS",
    "like_category",
    "check_holder_id",
]

_CODE = re.compile(r"[a-z][a-z0-9_-]*(:[A-Za-z0-9_.-]+)*")
code_length_max = 200
holder_id_length_max = 100


class AccountType(enum.Enum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    REVENUE = "revenue"
    EXPENSE = "expense"


class Side(enum.Enum):
    DEBIT = "debit"
    CREDIT = "credit"

    def opposite(self) -> Side:
        return Side.CREDIT if self is Side.DEBIT else Side.DEBIT


class AccountStatus(enum.Enum):
    OPEN = "open"
    FROZEN = "frozen"
    CLOSED = "closed"


def normal_side_of(account_type: AccountType) -> Side:
    return Side.DEBIT if account_type in (AccountType.ASSET, AccountType.EXPENSE) else Side.CREDIT


@dataclass(frozen=True)
class Account:
    id: int
    code: str
    name: str
    type: str
    normal_side: str
    currency: str
    holder_id: str | None
    min_balance: int | None
    max_balance: int | None
    status: str
    metadata: dict[str, Any]
    created_at: datetime


ACCOUNT_COLUMNS = (
    "id, code, name, type, normal_side, currency, holder_id, min_balance, max_balance, status, metadata, created_at"
)


def check_holder_id(value: object, field: str) -> str:
    """A holder id (a customer's, merchant's or supplier's id): 1 to 100 characters of a label
    (ledger/text.py): tokens, account listings and the command line's one-record-a-line output
    carry it."""
    if not isinstance(value, str) or not 1 <= len(value) <= holder_id_length_max:
        raise ValidationError(f"{field} must be 1 to {holder_id_length_max} characters", field=field)
    return check_label(value, field)


@dataclass(frozen=True)
class NewAccount:
    code: str
    name: str
    type: AccountType
    currency: str
    holder_id: str | None = None
    min_balance: int | None = None
    max_balance: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Contra accounts (an allowance for credit losses) take the side opposite to their type's.
    contra: bool = False

    def validated(self) -> NewAccount:
        if not isinstance(self.code, str) or not _CODE.fullmatch(self.code) or len(self.code) > code_length_max:
            raise ValidationError(
                f"code must be a colon path such as liabilities:wallet:U1 (lowercase first segment, "
                f"at most {code_length_max} characters), got {self.code!r}",
                field="code",
            )
        if not isinstance(self.name, str) or not 1 <= len(self.name) <= 200:
            raise ValidationError("name must be 1 to 200 characters", field="name")
        check_label(self.name, "name")
        if not isinstance(self.type, AccountType):
            raise ValidationError(f"type must be one of {[t.value for t in AccountType]}", field="type")
        parse_currency(self.currency)
        if self.holder_id is not None:
            check_holder_id(self.holder_id, "holderId")
        for name, value in (("minBalance", self.min_balance), ("maxBalance", self.max_balance)):
            if value is not None:
                parse_signed_amount(value, field=name)
        if self.min_balance is not None and self.max_balance is not None and self.min_balance > self.max_balance:
            raise ValidationError(
                f"minBalance {self.min_balance} is above maxBalance {self.max_balance}", field="minBalance"
            )
        if not isinstance(self.metadata, dict):
            raise ValidationError("metadata must be a JSON object", field="metadata")
        return self

    @property
    def normal_side(self) -> Side:
        side = normal_side_of(self.type)
        return side.opposite() if self.contra else side


def create_account(conn: psycopg.Connection[Any], new: NewAccount) -> tuple[Account, bool]:
    """Create the account, or return the existing one if it has the same attributes.

    Returns (account, created). An existing code with different attributes is a ValidationError.
    """
    new = new.validated()
    with conn.cursor(row_factory=class_row(Account)) as cur:
        cur.execute(
            f"""insert into ledger.accounts
                    (code, name, type, normal_side, currency, holder_id, min_balance, max_balance, metadata)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                on conflict (code) do nothing
                returning {ACCOUNT_COLUMNS}""",
            (new.code, new.name, new.type.value, new.normal_side.value, new.currency, new.holder_id,
             new.min_balance, new.max_balance, Jsonb(new.metadata)),
        )
        created = cur.fetchone()
    if created is not None:
        return created, True
    existing = get_account(conn, new.code)
    same = (existing.type, existing.normal_side, existing.currency, existing.holder_id,
            existing.min_balance, existing.max_balance) == (
        new.type.value, new.normal_side.value, new.currency, new.holder_id, new.min_balance, new.max_balance)
    if not same:
        raise ValidationError(f"account {new.code} already exists with different attributes", field="code")
    return existing, False


def get_account(conn: psycopg.Connection[Any], code: str) -> Account:
    with conn.cursor(row_factory=class_row(Account)) as cur:
        account = cur.execute(f"select {ACCOUNT_COLUMNS} from ledger.accounts where code = %s", (code,)).fetchone()
    if account is None:
        raise AccountNotFound(f"no account with code {code}", account=code)
    return account


def get_accounts(conn: psycopg.Connection[Any], ids: list[int]) -> dict[int, Account]:
    with conn.cursor(row_factory=class_row(Account)) as cur:
        rows = cur.execute(f"select {ACCOUNT_COLUMNS} from ledger.accounts where id = any(%s)", (ids,)).fetchall()
    return {a.id: a for a in rows}


def list_accounts(
    conn: psycopg.Connection[Any], *, prefix: str | None = None, holder_id: str | None = None,
    after_code: str | None = None, limit: int = 100, metadata: dict[str, Any] | None = None,
) -> list[Account]:
    """Accounts in code order, keyset-paginated by code; `metadata` keeps those whose metadata
    contains it."""
    query, params = accounts_query(prefix=prefix, holder_id=holder_id, after_code=after_code, limit=limit,
                                   metadata=metadata)
    with conn.cursor(row_factory=class_row(Account)) as cur:
        return cur.execute(query, params).fetchall()


def accounts_query(
    *, prefix: str | None = None, holder_id: str | None = None, after_code: str | None = None, limit: int = 100,
    metadata: dict[str, Any] | None = None,
) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement `list_accounts` runs and its parameters. The containment clause is written
    only when asked for, so the planner sees it plainly and reads accounts_metadata_idx (GIN);
    `x is null or ...` would hide it."""
    containment = sql.SQL("")
    if metadata is not None:
        metadata = check_containment(metadata, "metadata")
        containment = sql.SQL(" and metadata @> %(metadata)s")
    query = sql.SQL("""select {columns} from ledger.accounts
                 where (%(prefix)s::text is null or code = %(prefix)s or code like %(like)s)
                   and (%(holder)s::text is null or holder_id = %(holder)s)
                   and (%(after)s::text is null or code > %(after)s){containment}
                 order by code limit %(limit)s""").format(columns=sql.SQL(ACCOUNT_COLUMNS), containment=containment)
    return query, {"prefix": prefix, "like": like_category(prefix), "holder": holder_id, "after": after_code,
                   "limit": limit, "metadata": Jsonb(metadata) if metadata is not None else None}


def like_category(prefix: str | None) -> str | None:
    """LIKE pattern for the accounts under a category: `assets:loans` matches `assets:loans:L1`."""
    if prefix is None:
        return None
    escaped = prefix.rstrip(":").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + ":%"
