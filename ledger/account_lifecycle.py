"""Account lifecycle: freezing, closing and reopening an account, changing its limits, and the
history of both.

The rules live in the database (sql/functions/account_lifecycle.sql): a change locks the account
as a posting does, closing needs a zero posted balance and no open hold, a closed account is
reopened before it is frozen, and new limits bind later postings only. This module validates what
it is given, calls those functions and reads the history back (account_status_changes and
account_changes, both append-only and covered by the audit chains).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from ledger.accounts import Account, AccountStatus, get_account
from ledger.database_transaction import database_transaction
from ledger.errors import ValidationError, translate
from ledger.money import parse_signed_amount
from ledger.text import check_text

__all__ = [
    "reason_length_max",
    "StatusChange",
    "LimitChange",
    "set_status",
    "set_limits",
    "status_history",
    "limit_history",
]

reason_length_max = 500


@dataclass(frozen=True)
class StatusChange:
    id: int
    status: str
    reason: str
    changed_at: datetime


@dataclass(frozen=True)
class LimitChange:
    id: int
    min_balance: int | None
    max_balance: int | None
    changed_at: datetime


def _reason(reason: object) -> str:
    if not isinstance(reason, str) or not 1 <= len(reason) <= reason_length_max:
        raise ValidationError(f"reason must be 1 to {reason_length_max} characters", field="reason")
    return check_text(reason, "reason")


def set_status(conn: psycopg.Connection[Any], code: str, status: AccountStatus, reason: str) -> tuple[Account, bool]:
    """Freeze, close or reopen the account. Returns (account, changed); asking for the status it
    already has writes nothing and answers (account, False)."""
    if not isinstance(status, AccountStatus):
        raise ValidationError(f"status must be one of {[s.value for s in AccountStatus]}", field="status")
    check_text(code, "accountCode")
    reason = _reason(reason)
    with _translated(), database_transaction(conn):
        change_id = conn.execute("select ledger.set_account_status(%s, %s, %s)",
                                 (code, status.value, reason)).fetchone()
        account = get_account(conn, code)
    return account, change_id is not None and change_id[0] is not None


def set_limits(conn: psycopg.Connection[Any], code: str, min_balance: int | None,
               max_balance: int | None) -> tuple[Account, bool]:
    """Set the lowest and highest allowed balance (null: unbounded). A balance already past a new
    limit stands; later postings may not take it further past. Returns (account, changed)."""
    check_text(code, "accountCode")
    for name, value in (("minBalance", min_balance), ("maxBalance", max_balance)):
        if value is not None:
            parse_signed_amount(value, field=name)
    with _translated(), database_transaction(conn):
        changed = conn.execute("select ledger.set_account_limits(%s, %s, %s)",
                               (code, min_balance, max_balance)).fetchone()
        account = get_account(conn, code)
    return account, bool(changed and changed[0])


@contextmanager
def _translated() -> Iterator[None]:
    """The database's refusals as the ledger's typed errors."""
    try:
        yield
    except psycopg.Error as exc:
        error = translate(exc)
        if error is None:
            raise
        raise error from exc


def status_history(conn: psycopg.Connection[Any], account_id: int, *, before_id: int | None = None,
                   limit: int = 100) -> list[StatusChange]:
    """The account's status changes, newest first, keyset-paginated on id."""
    with conn.cursor(row_factory=class_row(StatusChange)) as cur:
        return cur.execute(
            """select id, status, reason, changed_at from ledger.account_status_changes
                where account_id = %(account)s and id < coalesce(%(before)s, 9223372036854775807)
                order by id desc limit %(limit)s""",
            {"account": account_id, "before": before_id, "limit": limit}).fetchall()


def limit_history(conn: psycopg.Connection[Any], account_id: int, *, before_id: int | None = None,
                  limit: int = 100) -> list[LimitChange]:
    """The versions of the account's limits, newest first, keyset-paginated on id: the first
    version (the limits it was created with) and every later one that changed them. A version
    that changed only the name or metadata is not a limit change and is left out."""
    with conn.cursor(row_factory=class_row(LimitChange)) as cur:
        return cur.execute(
            """select id, min_balance, max_balance, changed_at from (
                   select c.id, c.min_balance, c.max_balance, c.changed_at,
                          row_number() over w = 1
                          or (c.min_balance, c.max_balance) is distinct from
                             (lag(c.min_balance) over w, lag(c.max_balance) over w) as changed
                     from ledger.account_changes c where c.account_id = %(account)s
                   window w as (order by c.id)) v
                where v.changed and v.id < coalesce(%(before)s, 9223372036854775807)
                order by v.id desc limit %(limit)s""",
            {"account": account_id, "before": before_id, "limit": limit}).fetchall()
