"""Least privilege: the application, auditor and migrator roles, each tried from SQL with
`set role`: every forbidden operation fails with SQLSTATE 42501, every allowed one succeeds."""

from __future__ import annotations

import hashlib

import psycopg
import pytest
from book import BANK, WALLET_U1, open_book, top_up
from psycopg import sql

from ledger.checkpoints import store_checkpoint, verify_digest
from ledger.tokens import create_token, principal_for

_POST = """select ledger.post_batch('[{"op": "transfer", "key": "as-role", "fp": "aa", "kind": "a.b",
           "legs": [{"account": "assets:bank:icbc", "side": "debit", "amount": 7},
                    {"account": "liabilities:wallets:U1", "side": "credit", "amount": 7}]}]')"""
_NEW_ACCOUNT = """insert into ledger.accounts (code, name, type, normal_side, currency)
                  values ('assets:test:role', 'Role test', 'asset', 'debit', 'CNY')"""


def _attempt(conn, role: str, statement: str, params=None) -> str | None:
    """Run `statement` as `role` and roll it back; the SQLSTATE it failed with, or None."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
            conn.execute(statement, params)
    except psycopg.Error as error:
        return error.sqlstate
    return None


@pytest.fixture
def book(conn):
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 100, "t1")
    issued = create_token(conn, "operator")
    store_checkpoint(conn)
    return ids, issued


APP_ALLOWED = [
    "select * from ledger.accounts", "select * from ledger.entries", "select * from ledger.transactions",
    "select * from ledger.balances", "select * from ledger.api_token_revocations", _POST, _NEW_ACCOUNT,
    "select ledger.journal_horizon()", "select * from ledger.checkpoints",
    # Status and limits change only through the two functions that check and lock as a posting does.
    "select ledger.set_account_status('liabilities:wallets:U2', 'frozen', 'review')",
    "select ledger.set_account_limits('liabilities:wallets:U1', -50, null)",
    "select * from ledger.account_status_changes", "select * from ledger.account_changes",
]
APP_FORBIDDEN = [
    "select * from ledger.api_tokens",
    "select token_sha256 from ledger.api_tokens",
    "update ledger.accounts set name = 'x'",
    "update ledger.accounts set min_balance = -1000",
    "update ledger.accounts set status = 'closed'",
    "insert into ledger.account_status_changes (account_id, status) select id, 'frozen' from ledger.accounts",
    "insert into ledger.checkpoints (digest, position, accounts, entries) values ('v2:1:1::' || repeat('0', 64), '1:1:', 0, 0)",
    "insert into ledger.checkpoint_heads (checkpoint_id, account_id, version, hash)"
    " select 1, id, 0, '\\x00' from ledger.accounts",
    "insert into ledger.transactions (idempotency_key, fingerprint, kind, effective_at) values ('x', '\\x00', 'a', now())",
    "update ledger.balances set version = 0",
    "delete from ledger.entries",
    "truncate ledger.entries",
    "create table ledger.intruder (id int)",
    "select ledger.write_entries(null, null, null, null, null)",
]


@pytest.mark.parametrize("statement", APP_ALLOWED)
def test_the_application_may(conn, book, statement):
    assert _attempt(conn, "ledger_app", statement) is None


@pytest.mark.parametrize("statement", APP_FORBIDDEN)
def test_the_application_may_not(conn, book, statement):
    assert _attempt(conn, "ledger_app", statement) == "42501"


def test_the_application_checks_a_token_without_reading_hashes(conn, book):
    _, issued = book
    with conn.transaction(force_rollback=True):
        conn.execute("set local role ledger_app")
        principal = principal_for(conn, issued.token)
        assert principal is not None and principal.token_id == issued.id
        assert principal_for(conn, issued.token + "x") is None
    digest = hashlib.sha256(issued.token.encode()).digest()
    assert _attempt(conn, "ledger_app", "select * from ledger.api_token_by_sha256(%s)", (digest,)) is None
    assert _attempt(conn, "ledger_auditor", "select * from ledger.api_token_by_sha256(%s)", (digest,)) == "42501"


def test_the_application_cannot_store_a_checkpoint(conn, book):
    with conn.transaction(force_rollback=True):
        conn.execute("set local role ledger_app")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            store_checkpoint(conn)


AUDITOR_ALLOWED = [
    "select * from ledger.audit_journal", "select * from ledger.audit_accounts",
    "select * from ledger.audit_account_history", "select * from ledger.audit_statement_lines",
    "select * from ledger.audit_checkpoints", "select * from ledger.account_heads",
]
AUDITOR_FORBIDDEN = [
    "select * from ledger.api_tokens",
    "select * from ledger.api_token_revocations",
    "select * from ledger.settings",
    "select * from ledger.payments",
    _POST, _NEW_ACCOUNT,
    "insert into ledger.checkpoints (digest, position, accounts, entries) values ('v2:1:1::' || repeat('0', 64), '1:1:', 0, 0)",
    "update ledger.accounts set name = 'x'",
    "delete from ledger.checkpoints",
    "create table ledger.intruder (id int)",
    "select ledger.close_period(now())",
]


@pytest.mark.parametrize("statement", AUDITOR_ALLOWED)
def test_an_auditor_may(conn, book, statement):
    assert _attempt(conn, "ledger_auditor", statement) is None


@pytest.mark.parametrize("statement", AUDITOR_FORBIDDEN)
def test_an_auditor_may_not(conn, book, statement):
    assert _attempt(conn, "ledger_auditor", statement) == "42501"


def test_an_auditor_reads_the_views_and_verifies_a_digest(conn, book):
    ids, _ = book
    digest = conn.execute("select digest from ledger.checkpoints").fetchone()[0]
    with conn.transaction(force_rollback=True):
        conn.execute("set local role ledger_auditor")
        rows = conn.execute("""select account_code, debit_minor, credit_minor, balance_minor
                                 from ledger.audit_statement_lines order by account_code""").fetchall()
        assert rows == [(BANK, 100, None, 100), (WALLET_U1, None, 100, 100)]
        assert conn.execute("select posted_balance from ledger.audit_accounts where code = %s",
                            (WALLET_U1,)).fetchone()[0] == 100
        assert conn.execute("select count(*) from ledger.audit_checkpoints").fetchone()[0] == len(ids)
        assert verify_digest(conn, digest, progress=None).ok


MIGRATOR_ALLOWED = [
    "create table ledger.later (id int)",
    # Not accounts or transactions: on Citus no role may alter those while a function takes their
    # row type (docs/scale-out.md, "Roles and migrations on a cluster").
    "alter table ledger.settings add column later int",
    "create index on ledger.entries (amount)",
    "select * from ledger.api_tokens",
    "alter type ledger.leg add attribute later int",
]
MIGRATOR_FORBIDDEN = [
    "create role intruder",
    "create schema intruder",
    "alter role ledger_app superuser",
]


@pytest.mark.parametrize("statement", MIGRATOR_ALLOWED)
def test_the_migrator_owns_the_schema(conn, book, statement):
    assert _attempt(conn, "ledger_migrator", statement) is None


@pytest.mark.parametrize("statement", MIGRATOR_FORBIDDEN)
def test_the_migrator_may_not(conn, book, statement):
    assert _attempt(conn, "ledger_migrator", statement) == "42501"


def test_the_roles_are_created_once_per_server_and_tables_belong_to_the_migrator(conn):
    roles = conn.execute("""select rolname, rolcanlogin, rolsuper, rolcreaterole from pg_roles
                             where rolname in ('ledger_app', 'ledger_auditor', 'ledger_migrator')
                             order by rolname""").fetchall()
    assert roles == [(name, False, False, False) for name in ("ledger_app", "ledger_auditor", "ledger_migrator")]
    owners = conn.execute("""select distinct pg_get_userbyid(relowner) from pg_class
                              where relnamespace = 'ledger'::regnamespace and relkind in ('r', 'p')""").fetchall()
    assert owners == [("ledger_migrator",)]
    assert conn.execute("select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'ledger'").fetchone()[0] \
        == "ledger_migrator"
