"""API bearer tokens: created with a role (and a holder id for holders), stored as sha256,
revoked by recording a revocation. The token text is shown once and never stored."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ledger.accounts import Account
from ledger.errors import ValidationError

__all__ = ["Role", "Principal", "IssuedToken", "create_token", "revoke_token", "principal_for", "token_prefix"]

token_prefix = "lct_"
token_length_max = 200
_TOKEN_ID = re.compile(r"[0-9]{1,18}")


class Role(enum.Enum):
    ADMIN = "admin"        # everything, including creating accounts and closing periods
    OPERATOR = "operator"  # reads and posts
    AUDITOR = "auditor"    # reads everything, posts nothing
    HOLDER = "holder"      # reads its own accounts only, posts nothing


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, and for holders the holder id whose accounts they may see."""

    role: Role
    holder_id: str | None = None
    token_id: int | None = None

    def may_see_holder(self, holder_id: str | None) -> bool:
        """The visibility rule: a holder sees only what carries its own holder id (anything else
        behaves as if it did not exist); every other role sees everything."""
        return self.role is not Role.HOLDER or holder_id == self.holder_id

    def may_see(self, account: Account) -> bool:
        return self.may_see_holder(account.holder_id)


@dataclass(frozen=True)
class IssuedToken:
    id: int
    token: str  # shown once
    role: Role
    holder_id: str | None
    created_at: datetime


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_token(conn: psycopg.Connection[Any], role: Role | str, holder_id: str | None = None,
                 *, note: str = "") -> IssuedToken:
    try:
        role = Role(role)
    except ValueError:
        raise ValidationError(f"role must be one of {[r.value for r in Role]}, got {role!r}", field="role") from None
    if (role is Role.HOLDER) != (holder_id is not None):
        raise ValidationError("a holder token needs a holder id, and only a holder token has one", field="holder")
    if holder_id is not None and not 1 <= len(holder_id) <= 100:
        raise ValidationError("holder id must be 1 to 100 characters", field="holder")
    token = token_prefix + secrets.token_urlsafe(32)
    row = conn.execute(
        """insert into ledger.api_tokens (token_sha256, role, holder_id, note) values (%s, %s, %s, %s)
           returning id, created_at""",
        (_digest(token), role.value, holder_id, note),
    ).fetchone()
    assert row is not None
    return IssuedToken(row[0], token, role, holder_id, row[1])


def revoke_token(conn: psycopg.Connection[Any], token_or_id: str, *, reason: str = "") -> int:
    """Revoke by token text or by id; returns the id. Revoking twice is a no-op."""
    if _TOKEN_ID.fullmatch(token_or_id):
        row = conn.execute("select id from ledger.api_tokens where id = %s", (int(token_or_id),)).fetchone()
    else:
        row = conn.execute("select id from ledger.api_token_by_sha256(%s)", (_digest(token_or_id),)).fetchone()
    if row is None:
        raise ValidationError("no such token (give the token itself or its id)", field="token")
    conn.execute(
        "insert into ledger.api_token_revocations (token_id, reason) values (%s, %s) on conflict do nothing",
        (row[0], reason),
    )
    return int(row[0])


def principal_for(conn: psycopg.Connection[Any], token: str) -> Principal | None:
    """The principal a bearer token stands for, or None when unknown or revoked."""
    if not token or len(token) > token_length_max:
        return None
    row = conn.execute(
        """select t.id, t.role, t.holder_id from ledger.api_token_by_sha256(%s) t
            where not exists (select 1 from ledger.api_token_revocations r where r.token_id = t.id)""",
        (_digest(token),),
    ).fetchone()
    if row is None:
        return None
    return Principal(Role(row[1]), row[2], row[0])
