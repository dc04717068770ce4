"""Tamper evidence over everything that gives an entry meaning: for each kind of change a
superuser can make behind the append-only guards, `verify --digest` names it, from the stored
checkpoint and from a checkpoint file kept outside the database."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from book import BANK, CAPPED, MERCHANT_M1, USD_BANK, WALLET_U1, WALLET_U2, open_book, spend, top_up
from triggers_off import triggers_off

from ledger.account_lifecycle import set_limits, set_status
from ledger.accounts import AccountStatus, get_account
from ledger.audit import verify
from ledger.checkpoints import read_checkpoint_file, store_checkpoint, take_digest, verify_digest
from ledger.errors import ValidationError
from ledger.migrate import migrate
from ledger.posting import Hold, Leg, PostHold, Reverse, Side, Transfer, post_one
from ledger_cli.main import main

BEFORE_SPLIT_DIR = Path(__file__).resolve().parent / "data" / "sql_before_split"


def _book(conn) -> dict[str, int]:
    """Accounts and transactions of every shape: metadata, a reversal, a hold with expiry and its
    capture, a status history."""
    ids = open_book(conn)
    ids["paid"] = post_one(conn, Transfer("paid", "wallet.top_up", [
        Leg(BANK, Side.DEBIT, 1000), Leg(WALLET_U1, Side.CREDIT, 1000)],
        description="top-up by bank transfer", metadata={"bank_reference": "REF-1"})).transaction_id
    ids["spent"] = post_one(conn, spend(WALLET_U1, 300, "spent")).transaction_id
    ids["reversal"] = post_one(conn, Reverse("undo", ids["spent"])).transaction_id
    ids["hold"] = post_one(conn, Hold("auth", "payment.authorize", [
        Leg(WALLET_U1, Side.DEBIT, 200), Leg(MERCHANT_M1, Side.CREDIT, 200)])).transaction_id
    ids["capture"] = post_one(conn, PostHold("capture", ids["hold"])).transaction_id
    ids["u2_top_up"] = top_up(conn, WALLET_U2, 40, "u2")
    ids["U1"], ids["U2"] = ids[WALLET_U1], ids[WALLET_U2]
    set_status(conn, WALLET_U2, AccountStatus.FROZEN, "review")
    set_status(conn, WALLET_U2, AccountStatus.OPEN, "cleared")
    set_limits(conn, CAPPED, 0, 500)
    set_status(conn, USD_BANK, AccountStatus.CLOSED, "no more dollars")
    ids["CAP"] = ids[CAPPED]
    return ids


@pytest.fixture
def kept(conn, db_url, monkeypatch, tmp_path, capsys):
    """The book, a checkpoint stored and exported to a file, and a posting after it."""
    ids = _book(conn)
    monkeypatch.setenv("DATABASE_URL", db_url)
    path = tmp_path / "checkpoint.json"
    assert main(["checkpoint", "--export", str(path)]) == 0
    digest = capsys.readouterr().out.strip()
    top_up(conn, WALLET_U2, 5, "after")
    assert verify_digest(conn, digest, progress=None).ok
    return ids, digest, path


def _tamper(conn, statements: list[str], ids: dict[str, int]) -> None:
    """As superuser with triggers (append-only guards, foreign keys) off, then on again."""
    with conn.transaction():
        triggers_off(conn)
        for statement in statements:
            conn.execute(statement, ids)


def _named(conn, capsys, digest: str, path: Path, expected: str) -> None:
    """verify --digest names it: library and CLI, from the stored checkpoint and from the file."""
    for checkpoint_file in (None, read_checkpoint_file(path)):
        check = verify_digest(conn, digest, progress=None, checkpoint_file=checkpoint_file)
        assert not check.ok
        assert any(expected in p for p in check.problems), check.problems
    capsys.readouterr()
    for extra in ([], ["--checkpoint-file", str(path)]):
        assert main(["verify", "--digest", digest, *extra]) == 1
        out = capsys.readouterr().out
        assert "BROKEN:" in out and expected in out, out


# Transaction fields: each is in the transaction's hash, which its entries' chains carry.
TRANSACTION_FIELDS = {
    "description": "update ledger.transactions set description = 'cash' where id = %(paid)s",
    "kind": "update ledger.transactions set kind = 'fee.refund' where id = %(paid)s",
    "metadata": """update ledger.transactions set metadata = '{"bank_reference": "REF-2"}' where id = %(paid)s""",
    "idempotency key": "update ledger.transactions set idempotency_key = 'other' where id = %(paid)s",
    "effective time": "update ledger.transactions"
                      " set effective_at = (effective_at at time zone 'UTC' - interval '1 day') at time zone 'UTC'"
                      " where id = %(paid)s",
    "reversal link": "update ledger.transactions set reverses_id = %(paid)s where id = %(reversal)s",
    "hold link": "update ledger.transactions set resolves_hold_id = null, hold_action = null where id = %(capture)s",
    "expiry": "update ledger.transactions set expires_at = (expires_at at time zone 'UTC' + interval '1 day') at time zone 'UTC'"
              " where id = %(hold)s",
    "commit order": "update ledger.transactions set created_xact = '1'::xid8 where id = %(paid)s",
}
TRANSACTION_OF = {"reversal link": "reversal", "hold link": "capture", "expiry": "hold"}


@pytest.mark.parametrize("what", list(TRANSACTION_FIELDS))
def test_a_changed_transaction_field_is_named(conn, kept, capsys, what):
    ids, digest, path = kept
    _tamper(conn, [TRANSACTION_FIELDS[what]], ids)
    transaction = ids[TRANSACTION_OF.get(what, "paid")]
    _named(conn, capsys, digest, path, f"(transaction {transaction}): hash does not chain")


def test_swapped_account_codes_are_named(conn, kept, capsys):
    """Swapping codes moves balances between holders: the accounts' records differ."""
    ids, digest, path = kept
    _tamper(conn, ["update ledger.accounts set code = 'x:swap' where code = 'liabilities:wallets:U1'",
                   "update ledger.accounts set code = 'liabilities:wallets:U1' where code = 'liabilities:wallets:U2'",
                   "update ledger.accounts set code = 'liabilities:wallets:U2' where code = 'x:swap'"], ids)
    _named(conn, capsys, digest, path, f"account {WALLET_U2}")
    _named(conn, capsys, digest, path, "its record (code, type, normal side, currency, holder, creation) differs")
    check = verify_digest(conn, digest, progress=None, checkpoint_file=read_checkpoint_file(path))
    assert any(f"account {WALLET_U2} (code {WALLET_U1} in the checkpoint file)" in p for p in check.problems)


@pytest.mark.parametrize("statement", [
    "update ledger.accounts set holder_id = 'U2' where id = %(U1)s",
    "update ledger.accounts set type = 'equity' where id = %(U1)s",
    "update ledger.accounts set created_xact = null where id = %(U1)s",
])
def test_a_changed_account_record_is_named(conn, kept, capsys, statement):
    ids, digest, path = kept
    _tamper(conn, [statement], ids)
    _named(conn, capsys, digest, path, f"account {WALLET_U1}: its record (code")


def test_a_changed_currency_is_named(conn, kept, capsys):
    ids, digest, path = kept
    _tamper(conn, ["update ledger.accounts set currency = 'USD' where id = %(U2)s"], ids)
    _named(conn, capsys, digest, path, f"account {WALLET_U2} entry version 1")
    _named(conn, capsys, digest, path, f"account {WALLET_U2}: its record (code")


@pytest.mark.parametrize("statement", [
    "update ledger.accounts set name = 'Someone else' where id = %(U1)s",
    "update ledger.accounts set min_balance = -100000 where id = %(U1)s",
    "update ledger.accounts set status = 'closed' where id = %(U1)s",
])
def test_an_account_that_differs_from_its_history_is_named(conn, kept, capsys, statement):
    ids, digest, path = kept
    _tamper(conn, [statement], ids)
    _named(conn, capsys, digest, path, f"account {WALLET_U1}: its name, limits, metadata or status differ")
    assert not verify(conn, progress=None).ok              # without a digest too


def test_rewritten_limit_history_is_named(conn, kept, capsys):
    ids, digest, path = kept
    _tamper(conn, ["update ledger.accounts set min_balance = -100000 where id = %(U1)s",
                   "update ledger.account_changes set min_balance = -100000 "
                   "where account_id = %(U1)s"], ids)
    assert verify(conn, progress=None).ok                  # consistent: only the digest can tell
    _named(conn, capsys, digest, path, f"account {WALLET_U1}: its name/limit history differs")


@pytest.mark.parametrize("statement", [
    "update ledger.account_changes set max_balance = 5000 where account_id = %(CAP)s and max_balance = 500",
    "delete from ledger.account_changes where account_id = %(CAP)s and max_balance = 500",
])
def test_a_rewritten_or_removed_limit_change_is_named(conn, kept, capsys, statement):
    """A version setAccountLimits wrote is in the account's change chain like any other."""
    ids, digest, path = kept
    _tamper(conn, [statement], ids)
    _named(conn, capsys, digest, path, f"account {CAPPED}: its name/limit history differs")


def test_a_closed_account_and_changed_limits_verify(conn, kept):
    assert verify(conn, progress=None).ok
    assert get_account(conn, USD_BANK).status == "closed"


@pytest.mark.parametrize("statement", [
    "update ledger.account_status_changes set reason = 'routine' where reason = 'review'",
    "delete from ledger.account_status_changes where reason in ('review', 'cleared')",
    """insert into ledger.account_status_changes (account_id, status, reason, created_xact)
       select account_id, 'open', 'again', created_xact from ledger.account_status_changes
        where reason = 'cleared'""",
])
def test_changed_status_history_is_named(conn, kept, capsys, statement):
    ids, digest, path = kept
    _tamper(conn, [statement], ids)
    _named(conn, capsys, digest, path, f"account {WALLET_U2}: its status history differs")


@pytest.mark.parametrize("statement, expected", [
    ("delete from ledger.entries where transaction_id = %(u2_top_up)s", f"account {BANK} entry version"),
    ("delete from ledger.transactions where id = %(paid)s", "(transaction %(paid)s): its transaction is missing"),
    ("""insert into ledger.transactions (idempotency_key, fingerprint, kind, effective_at, created_xact)
        values ('forged', '\\x00', 'wallet.top_up', now(), '1')""", "fewer than two legs"),
    ("""insert into ledger.entries (account_id, account_version, transaction_id, currency, side, amount, layer,
                                    effective_at, recorded_at, posted_balance_after, pending_balance_after, hash)
        select account_id, account_version + 100, transaction_id, currency, side, amount, layer, effective_at,
               recorded_at, posted_balance_after, pending_balance_after, hash
          from ledger.entries where transaction_id = %(paid)s""", f"account {BANK} entry version 101"),
])
def test_deleted_or_inserted_rows_are_named(conn, kept, capsys, statement, expected):
    ids, digest, path = kept
    _tamper(conn, [statement], ids)
    _named(conn, capsys, digest, path, expected % ids)


def _rewrite_chains(conn, ids) -> None:
    """What a careful forger does: rehash every chain and the projection with the book's own functions."""
    conn.execute(
        """with recomputed as (
               select e.account_id, e.account_version,
                      ledger.chain(decode(repeat('00', 32), 'hex'), ledger.entry_payload_v2(
                          e.account_id, e.account_version, e.transaction_id, e.currency, e.side, e.amount, e.layer,
                          e.effective_at, e.recorded_at, e.posted_balance_after, e.pending_balance_after,
                          ledger.transaction_hash(t)))
                      over (partition by e.account_id order by e.account_version
                            rows between unbounded preceding and current row) as hash
                 from ledger.entries e join ledger.transactions t on t.id = e.transaction_id)
           update ledger.entries e set hash = r.hash from recomputed r
            where e.account_id = r.account_id and e.account_version = r.account_version""")
    conn.execute("""update ledger.balances b set last_hash = (select e.hash from ledger.entries e
                     where e.account_id = b.account_id order by e.account_version desc limit 1)
                     where b.version > 0""")


@pytest.mark.parametrize("statement", [
    "update ledger.transactions set metadata = '{\"bank_reference\": \"REF-9\"}' where id = %(paid)s",
    "update ledger.entries set effective_at = (effective_at at time zone 'UTC' - interval '1 day') at time zone 'UTC'"
    " where transaction_id = %(paid)s",
])
def test_a_consistently_rewritten_chain_is_named_by_the_checkpoint(conn, kept, capsys, statement):
    ids, digest, path = kept
    with conn.transaction():
        triggers_off(conn)
        conn.execute(statement, ids)
        _rewrite_chains(conn, ids)
    assert verify(conn, progress=None).ok                  # every chain holds again
    _named(conn, capsys, digest, path, f"account {BANK}: ")
    _named(conn, capsys, digest, path, "has its chain head at version")


def test_the_file_names_the_account_when_the_stored_checkpoints_are_gone(conn, kept, capsys):
    ids, digest, path = kept
    with conn.transaction():
        triggers_off(conn)
        conn.execute("update ledger.accounts set holder_id = 'M1' where id = %(U1)s", ids)
        conn.execute("delete from ledger.checkpoint_heads")
        conn.execute("delete from ledger.checkpoints")
    problems = verify_digest(conn, digest, progress=None).problems
    assert any("no checkpoint is stored" in p for p in problems)
    problems = verify_digest(conn, digest, progress=None, checkpoint_file=read_checkpoint_file(path)).problems
    assert any(p.startswith(f"account {WALLET_U1}: its record") for p in problems), problems
    assert main(["verify", "--checkpoint-file", str(path)]) == 1   # the file's own digest
    assert f"account {WALLET_U1}: its record" in capsys.readouterr().out


def test_an_altered_checkpoint_file_is_told(conn, kept, capsys):
    ids, digest, path = kept
    document = json.loads(path.read_text())
    assert document["digest"] == digest and document["position"] == digest.split(":", 1)[1].rsplit(":", 1)[0]
    assert {h["code"] for h in document["heads"]} >= {BANK, WALLET_U1, USD_BANK}   # idle accounts too
    document["heads"][0]["hash"] = "00" * 32
    path.write_text(json.dumps(document))
    _tamper(conn, [TRANSACTION_FIELDS["description"]], ids)
    _tamper(conn, ["update ledger.accounts set holder_id = 'M1' where id = %(U1)s"], ids)
    problems = verify_digest(conn, digest, progress=None, checkpoint_file=read_checkpoint_file(path)).problems
    assert "the checkpoint file: its lines do not give its digest (the file was altered)" in problems
    path.write_text("{not json")
    with pytest.raises(ValidationError):
        read_checkpoint_file(path)
    assert main(["verify", "--digest", digest, "--checkpoint-file", str(path)]) == 2


def test_a_checkpoint_file_of_another_digest_is_refused(conn, kept):
    ids, digest, path = kept
    with pytest.raises(ValidationError):
        verify_digest(conn, take_digest(conn).digest, progress=None, checkpoint_file=read_checkpoint_file(path))


def test_an_intact_book_verifies_with_the_file(conn, kept, capsys):
    ids, digest, path = kept
    assert verify_digest(conn, digest, progress=None, checkpoint_file=read_checkpoint_file(path)).ok
    set_status(conn, WALLET_U1, AccountStatus.FROZEN, "after the checkpoint")   # extends, not changes
    conn.execute("update ledger.accounts set name = 'Renamed' where code = %s", (WALLET_U1,))
    assert verify(conn, progress=None).ok
    capsys.readouterr()
    assert main(["verify", "--digest", digest, "--checkpoint-file", str(path)]) == 0
    assert "OK: the journal extends, unchanged" in capsys.readouterr().out


def test_a_book_hashed_with_the_first_encoding_verifies_and_extends_after_the_upgrade(empty_db, tmp_path: Path):
    """Entries written before 0080 keep chain version 1; new ones get version 2; both verify,
    and digests of either version check."""
    for path in BEFORE_SPLIT_DIR.glob("*.sql"):
        shutil.copy(path, tmp_path / path.name)
    migrate(empty_db, directory=tmp_path)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        open_book(conn)
        top_up(conn, WALLET_U1, 100, "old-1")
        post_one(conn, spend(WALLET_U1, 30, "old-2"))
        old_digest = "v1:" + conn.execute(
            """select pg_current_snapshot()::text || ':' || encode(sha256(convert_to(string_agg(
                      account_id || ':' || version || ':' || encode(last_hash, 'hex'), E'\\n' order by account_id),
                      'UTF8')), 'hex') from ledger.balances where version > 0""").fetchone()[0]
    migrate(empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert conn.execute("select array_agg(distinct chain_version) from ledger.entries").fetchone()[0] == [1]
        assert verify(conn, progress=None).ok
        assert verify_digest(conn, old_digest, progress=None).ok
        checkpoint = store_checkpoint(conn)
        top_up(conn, WALLET_U1, 5, "new-1")
        versions = conn.execute("""select chain_version, count(*) from ledger.entries
                                    group by chain_version order by 1""").fetchall()
        assert versions == [(1, 4), (2, 2)]
        assert verify(conn, progress=None).ok
        assert verify_digest(conn, checkpoint.digest.digest, progress=None).ok
        assert verify_digest(conn, old_digest, progress=None).ok
        _tamper(conn, ["""update ledger.entries
                              set effective_at = (effective_at at time zone 'UTC' - interval '1 hour') at time zone 'UTC'
                           where amount = 30 and chain_version = 1"""], {})
        check = verify_digest(conn, checkpoint.digest.digest, progress=None)
        assert any(f"account {WALLET_U1} entry version 2" in p and "hash does not chain" in p
                   for p in check.problems), check.problems
