"""Digests with a journal position, checkpoints, and `verify --digest` catching a tampered journal."""

from __future__ import annotations

import psycopg
import pytest
from triggers_off import triggers_off

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.checkpoints import (
    account_heads_as_of,
    digest_of_accounts,
    digest_of_heads,
    heads_as_of,
    list_checkpoints,
    parse_digest,
    store_checkpoint,
    take_digest,
    verify_digest,
)
from ledger.errors import LedgerError, ValidationError
from ledger.posting import Leg, Transfer, post
from ledger_cli.main import main


def _setup(conn):
    create_account(conn, NewAccount("assets:bank:a", "Bank", AccountType.ASSET, "CNY"))
    for name in ("u1", "u2"):
        create_account(conn, NewAccount(f"liabilities:wallets:{name}", name, AccountType.LIABILITY, "CNY"))
    create_account(conn, NewAccount("liabilities:wallets:idle", "never used", AccountType.LIABILITY, "CNY"))


def _top_up(key, wallet, amount):
    return Transfer(key, "wallet.top_up", [Leg("assets:bank:a", Side.DEBIT, amount),
                                           Leg(f"liabilities:wallets:{wallet}", Side.CREDIT, amount)])


def _id(conn, code):
    return conn.execute("select id from ledger.accounts where code = %s", (code,)).fetchone()[0]


def test_digest_is_recomputable_from_the_public_tables(conn):
    _setup(conn)
    post(conn, [_top_up("k1", "u1", 100), _top_up("k2", "u2", 250)])
    digest = take_digest(conn)
    position, hex_digest = parse_digest(digest.digest)
    assert position == digest.position
    assert digest.accounts == 4 and digest.entries == 4      # the idle account is covered too
    lines = conn.execute(
        """select a.id, b.version, b.last_hash, ledger.account_record_hash(a) from ledger.accounts a
             join ledger.balances b on b.account_id = a.id order by a.id""").fetchall()
    recomputed = account_heads_as_of(conn, position)
    assert [(h.account_id, h.version, h.hash, h.record_hash) for h in recomputed.values()] == \
        [(a, v, bytes(h), bytes(r)) for a, v, h, r in lines]
    assert all(h.status_count == 1 and h.change_count == 1 for h in recomputed.values())
    assert digest_of_accounts(recomputed.values()) == hex_digest
    # Version 1 digests (entry heads only) are still computed the same way.
    heads = conn.execute("select account_id, version, last_hash from ledger.balances").fetchall()
    assert digest_of_heads(heads) == digest_of_heads((a, v, h) for a, (v, h) in heads_as_of(conn, position).items())


def test_an_old_digest_still_verifies_after_the_journal_grew(conn, db_url, monkeypatch, capsys):
    _setup(conn)
    post(conn, [_top_up("k1", "u1", 100)])
    old = take_digest(conn)
    post(conn, [_top_up("k2", "u1", 50), _top_up("k3", "u2", 70)])
    check = verify_digest(conn, old.digest, progress=None)
    assert check.ok and check.problems == [] and check.recomputed == old.digest
    assert take_digest(conn).digest != old.digest
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["verify", "--digest", old.digest]) == 0
    assert "OK: the journal extends, unchanged" in capsys.readouterr().out
    assert main(["verify"]) == 0                      # plain verify prints a digest to keep
    printed = [line for line in capsys.readouterr().out.splitlines() if "--digest`: " in line]
    kept = printed[0].split("--digest`: ")[1]
    assert kept.startswith("v2:") and main(["verify", "--digest", kept]) == 0


def test_position_excludes_transactions_in_flight(conn, db_url):
    """A digest taken while a posting is in flight covers the journal without it; once the
    posting commits (with a lower entry id than later ones) the old digest still verifies."""
    _setup(conn)
    post(conn, [_top_up("k1", "u1", 100)])
    with psycopg.connect(db_url, autocommit=True) as other:
        with other.transaction():
            post(other, [_top_up("k2", "u2", 30)])
            during = take_digest(conn)
        post(conn, [_top_up("k3", "u1", 5)])
    assert during.entries == 2
    assert verify_digest(conn, during.digest, progress=None).ok
    assert verify_digest(conn, take_digest(conn).digest, progress=None).ok


def test_tampered_entry_is_named(conn, db_url, monkeypatch, capsys):
    _setup(conn)
    post(conn, [_top_up("k1", "u1", 100), _top_up("k2", "u2", 250)])
    checkpoint = store_checkpoint(conn, note="daily")
    post(conn, [_top_up("k3", "u1", 1)])
    bank = _id(conn, "assets:bank:a")
    with conn.transaction():
        triggers_off(conn)
        conn.execute("update ledger.entries set amount = amount + 1000 where account_id = %s and account_version = 2",
                     (bank,))
    check = verify_digest(conn, checkpoint.digest.digest, progress=None)
    assert not check.ok
    assert any("account assets:bank:a entry version 2" in p for p in check.problems)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["verify", "--digest", checkpoint.digest.digest]) == 1
    out = capsys.readouterr().out
    assert "BROKEN: journal: account assets:bank:a entry version 2" in out


def _rewrite_chain(conn, account_id):
    """What a careful forger does after editing an entry: rehash the chain and the projection."""
    conn.execute(
        """with recomputed as (
               select account_id, account_version,
                      ledger.chain(decode(repeat('00', 32), 'hex'), ledger.entry_payload_v2(
                          e.account_id, e.account_version, e.transaction_id, e.currency, e.side, e.amount, e.layer,
                          e.effective_at, e.recorded_at, e.posted_balance_after, e.pending_balance_after,
                          ledger.transaction_hash(t)))
                      over (partition by e.account_id order by e.account_version
                            rows between unbounded preceding and current row) as hash
                 from ledger.entries e join ledger.transactions t on t.id = e.transaction_id
                where e.account_id = %(id)s)
           update ledger.entries e set hash = r.hash from recomputed r
            where e.account_id = r.account_id and e.account_version = r.account_version""", {"id": account_id})
    conn.execute(
        """update ledger.balances b set last_hash = (select e.hash from ledger.entries e where e.account_id = b.account_id
                                                     order by e.account_version desc limit 1)
            where b.account_id = %s""", (account_id,))


def test_rewritten_chain_is_caught_by_the_digest_and_named_by_the_checkpoint(conn, db_url, monkeypatch, capsys):
    _setup(conn)
    post(conn, [_top_up("k1", "u1", 100), _top_up("k2", "u2", 250)])
    checkpoint = store_checkpoint(conn)
    post(conn, [_top_up("k3", "u2", 7)])
    wallet = _id(conn, "liabilities:wallets:u2")
    with conn.transaction():
        triggers_off(conn)
        # Backdate the first top-up of u2 by a day, then hide it by rewriting the chain.
        conn.execute("""update ledger.entries
                           set effective_at = (effective_at at time zone 'UTC' - interval '1 day') at time zone 'UTC'
                         where account_id = %s and account_version = 1""", (wallet,))
        _rewrite_chain(conn, wallet)
    check = verify_digest(conn, checkpoint.digest.digest, progress=None)
    assert not check.ok
    assert not any(p.startswith("journal:") for p in check.problems)  # the chain itself is consistent again
    assert any(p.startswith(f"account liabilities:wallets:u2: checkpoint {checkpoint.id} has its chain head at "
                            "version 1") for p in check.problems), check.problems
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["verify", "--digest", checkpoint.digest.digest]) == 1
    assert "account liabilities:wallets:u2" in capsys.readouterr().out


def test_checkpoint_command_and_append_only(conn, db_url, monkeypatch, capsys):
    _setup(conn)
    post(conn, [_top_up("k1", "u1", 100)])
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["checkpoint", "--note", "end of day"]) == 0
    digest = capsys.readouterr().out.strip()
    [stored] = list_checkpoints(conn)
    assert stored.digest.digest == digest and stored.note == "end of day"
    heads = conn.execute("select count(*) from ledger.checkpoint_heads where checkpoint_id = %s",
                         (stored.id,)).fetchone()[0]
    assert heads == 4                                 # every account, with or without entries
    for statement in ("update ledger.checkpoints set note = 'x'", "delete from ledger.checkpoint_heads",
                      "truncate ledger.checkpoints cascade"):
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(statement)
        assert "append-only" in str(refused.value)


def test_malformed_digest(conn, db_url, monkeypatch, capsys):
    for bad in ("", "v3:1:2::" + "0" * 64, "v1:1:2::abc", "nonsense"):
        with pytest.raises(ValidationError):
            verify_digest(conn, bad, progress=None)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["verify", "--digest", "v1:nope"]) == 2
    assert "VALIDATION" in capsys.readouterr().err
    with pytest.raises(LedgerError):
        store_checkpoint(conn, note="x" * 201)


def test_without_a_checkpoint_of_the_digest_the_latest_checkpoint_names_the_account(conn):
    _setup(conn)
    post(conn, [_top_up("k1", "u1", 100), _top_up("k2", "u2", 250)])
    kept = take_digest(conn)                          # kept by an auditor, not stored
    post(conn, [_top_up("k3", "u2", 1)])
    checkpoint = store_checkpoint(conn)
    assert checkpoint.digest.digest != kept.digest
    wallet = _id(conn, "liabilities:wallets:u1")
    with conn.transaction():
        triggers_off(conn)
        conn.execute("""update ledger.entries
                           set effective_at = (effective_at at time zone 'UTC' - interval '1 hour') at time zone 'UTC'
                         where account_id = %s and account_version = 1""", (wallet,))
        _rewrite_chain(conn, wallet)
    check = verify_digest(conn, kept.digest, progress=None)
    assert not check.ok
    assert f"no checkpoint holds this digest; compared with the latest, checkpoint {checkpoint.id}" in check.problems
    assert any(p.startswith("account liabilities:wallets:u1:") for p in check.problems)
