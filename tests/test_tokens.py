"""API tokens: stored only as sha256, roles and holder ids checked, revocation recorded."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from ledger.accounts import get_account
from ledger.errors import ValidationError
from ledger.tokens import Principal, Role, create_token, principal_for, revoke_token


def test_create_and_look_up(conn):
    issued = create_token(conn, "holder", "U1", note="mobile app")
    assert issued.token.startswith("lct_") and len(issued.token) > 40
    assert principal_for(conn, issued.token) == Principal(Role.HOLDER, "U1", issued.id)
    assert principal_for(conn, issued.token + "x") is None
    assert principal_for(conn, "") is None
    row = conn.execute("select token_sha256, role, holder_id, note from ledger.api_tokens where id = %s",
                       (issued.id,)).fetchone()
    assert row[0] == hashlib.sha256(issued.token.encode()).digest()
    assert (row[1], row[2], row[3]) == ("holder", "U1", "mobile app")
    stored = conn.execute("select count(*) from ledger.api_tokens where token_sha256::text like %s",
                          (f"%{issued.token}%",)).fetchone()
    assert stored[0] == 0


def test_roles_and_holders(conn):
    for role in ("admin", "operator", "auditor"):
        assert principal_for(conn, create_token(conn, role).token).role is Role(role)
    with pytest.raises(ValidationError):
        create_token(conn, "holder")
    with pytest.raises(ValidationError):
        create_token(conn, "admin", "U1")
    with pytest.raises(ValidationError) as bad:
        create_token(conn, "root")
    assert bad.value.field == "role"


def test_revoke_by_token_or_id_is_recorded(conn):
    first, second = create_token(conn, "operator"), create_token(conn, "auditor")
    assert revoke_token(conn, first.token, reason="leaked") == first.id
    assert revoke_token(conn, str(second.id)) == second.id
    assert revoke_token(conn, str(second.id)) == second.id  # twice: a no-op
    assert principal_for(conn, first.token) is None and principal_for(conn, second.token) is None
    reasons = dict(conn.execute("select token_id, reason from ledger.api_token_revocations").fetchall())
    assert reasons == {first.id: "leaked", second.id: ""}
    with pytest.raises(ValidationError):
        revoke_token(conn, "no-such-token")


def test_tokens_are_append_only(conn):
    issued = create_token(conn, "admin")
    for statement in ("update ledger.api_tokens set role = 'holder'", "delete from ledger.api_tokens",
                      "truncate ledger.api_tokens", "delete from ledger.api_token_revocations"):
        with pytest.raises(psycopg.Error):
            conn.execute(statement)
    assert principal_for(conn, issued.token).role is Role.ADMIN


def test_a_holder_sees_only_what_carries_its_holder_id(conn):
    from book import BANK, WALLET_U1, WALLET_U2, open_book

    open_book(conn)
    mine, theirs, platform = (get_account(conn, code) for code in (WALLET_U1, WALLET_U2, BANK))
    holder = Principal(Role.HOLDER, mine.holder_id, 1)
    assert holder.may_see(mine) and not holder.may_see(theirs) and not holder.may_see(platform)
    assert holder.may_see_holder(mine.holder_id) and not holder.may_see_holder(theirs.holder_id)
    assert not holder.may_see_holder(None)
    for role in (Role.ADMIN, Role.OPERATOR, Role.AUDITOR):
        staff = Principal(role, None, 2)
        assert staff.may_see(mine) and staff.may_see(theirs) and staff.may_see(platform)
        assert staff.may_see_holder("anyone")
