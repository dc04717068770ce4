"""API bearer tokens: created with a role (and a holder id for holders, and optionally an
expiry), stored as sha256, revoked by recording a revocation. The token text is shown once and
never stored; `list_tokens` shows everything else about them."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ledger.accounts import Account, check_holder_id
from ledger.errors import ReadOnlyDatabase, ValidationError

__all__ = [
    "Role", "Principal", "IssuedToken", "TokenInfo", "create_token", "revoke_token", "principal_for", "list_tokens",
    "parse_duration", "token_prefix",
]

token_prefix = "lct_"
token_length_max = 200
_TOKEN_ID = re.compile(r"[0-9]{1,18}")
_DURATION = re.compile(r"([0-9]{1,6})([smhd])")
_DURATION_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


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
    expires_at: datetime | None = None


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never the token nor its hash."""

    id: int
    role: Role
    holder_id: str | None
    note: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `15m` or `90s` as a timedelta (for `token create --expires-in`)."""
    match = _DURATION.fullmatch(text.strip())  # `1dx` or `1d2h` is a typo, not one day
    if match is None or int(match.group(1)) == 0:
        raise ValidationError(f"a duration is a positive number and a unit s, m, h or d (e.g. 30d), got {text!r}",
                              field="expires_in")
    return timedelta(seconds=int(match.group(1)) * _DURATION_UNIT_S[match.group(2)])


def _read_only(what: str) -> ReadOnlyDatabase:
    return ReadOnlyDatabase(f"the database is read-only (a standby, or default_transaction_read_only is on); "
                            f"{what} on the primary")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_token(conn: psycopg.Connection[Any], role: Role | str, holder_id: str | None = None,
                 *, note: str = "", expires_in: timedelta | None = None) -> IssuedToken:
    try:
        role = Role(role)
    except ValueError:
        raise ValidationError(f"role must be one of {[r.value for r in Role]}, got {role!r}", field="role") from None
    if (role is Role.HOLDER) != (holder_id is not None):
        raise ValidationError("a holder token needs a holder id, and only a holder token has one", field="holder")
    if holder_id is not None:
        check_holder_id(holder_id, "holder")
    if expires_in is not None and expires_in <= timedelta(0):
        raise ValidationError("a token's expiry must lie in the future", field="expires_in")
    token = token_prefix + secrets.token_urlsafe(32)
    try:
        row = conn.execute(
            """insert into ledger.api_tokens (token_sha256, role, holder_id, note, expires_at)
               values (%s, %s, %s, %s, clock_timestamp() + %s) returning id, created_at, expires_at""",
            (_digest(token), role.value, holder_id, note, expires_in),
        ).fetchone()
    except pg_errors.ReadOnlySqlTransaction as exc:
        raise _read_only("create tokens") from exc
    assert row is not None
    return IssuedToken(row[0], token, role, holder_id, row[1], row[2])


def list_tokens(conn: psycopg.Connection[Any]) -> list[TokenInfo]:
    """Every token, oldest first, with its expiry and revocation."""
    rows = conn.execute(
        """select t.id, t.role, t.holder_id, t.note, t.created_at, t.expires_at, r.revoked_at
             from ledger.api_tokens t left join ledger.api_token_revocations r on r.token_id = t.id
            order by t.id""").fetchall()
    return [TokenInfo(row[0], Role(row[1]), row[2], row[3], row[4], row[5], row[6]) for row in rows]


def revoke_token(conn: psycopg.Connection[Any], token_or_id: str, *, reason: str = "") -> int:
    """Revoke by token text or by id; returns the id. Revoking twice is a no-op."""
    if _TOKEN_ID.fullmatch(token_or_id):
        row = conn.execute("select id from ledger.api_tokens where id = %s", (int(token_or_id),)).fetchone()
    else:
        row = conn.execute("select id from ledger.api_token_by_sha256(%s)", (_digest(token_or_id),)).fetchone()
    if row is None:
        raise ValidationError("no such token (give the token itself or its id)", field="token")
    try:
        conn.execute(
            "insert into ledger.api_token_revocations (token_id, reason) values (%s, %s) on conflict do nothing",
            (row[0], reason),
        )
    except pg_errors.ReadOnlySqlTransaction as exc:
        raise _read_only("revoke tokens") from exc
    return int(row[0])


def principal_for(conn: psycopg.Connection[Any], token: str) -> Principal | None:
    """The principal a bearer token stands for, or None when unknown, revoked or expired."""
    if not token or len(token) > token_length_max:
        return None
    row = conn.execute(
        """select t.id, t.role, t.holder_id from ledger.api_token_by_sha256(%s) t
            where (t.expires_at is null or t.expires_at > clock_timestamp())
              and not exists (select 1 from ledger.api_token_revocations r where r.token_id = t.id)""",
        (_digest(token),),
    ).fetchone()
    if row is None:
        return None
    return Principal(Role(row[1]), row[2], row[0])
