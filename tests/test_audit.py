"""Tamper evidence: verify rebuilds everything from the entries and names the first broken thing."""

from __future__ import annotations

import hashlib
import io
import threading

import psycopg
import pytest
from book import BANK, MERCHANT_M1, WALLET_U1, WALLET_U2, open_book, spend, top_up
from triggers_off import triggers_off

from ledger.accounts import Side
from ledger.audit import audit_digest, chain_hash, entry_payload, entry_payload_v2, genesis_hash, verify
from ledger.epoch import epoch_us
from ledger.posting import Hold, Leg, post_one
from ledger_cli.main import main


def _book_with_history(conn) -> dict[str, int]:
    ids = open_book(conn)
    top_up(conn, WALLET_U1, 1000, "t1")
    post_one(conn, spend(WALLET_U1, 300, "s1"))
    top_up(conn, WALLET_U1, 50, "t2")
    return ids


def _tamper(conn, statement: str, *params) -> None:
    """As superuser with triggers (and so foreign keys and append-only guards) off."""
    with conn.transaction():
        triggers_off(conn)
        conn.execute(statement, params)


def test_an_intact_journal_verifies(conn):
    _book_with_history(conn)
    lines: list[str] = []
    report = verify(conn, progress=None, say=lines.append)
    assert report.ok, report.problems
    assert report.entries == 6 and report.transactions == 3
    assert report.currencies == {"CNY": 1350}
    assert any("trial balance CNY" in line for line in lines)


def test_the_chain_hash_is_recomputable_outside_the_database(conn):
    ids = _book_with_history(conn)
    rows = conn.execute(
        """select e.account_id, e.account_version, e.transaction_id, e.currency, e.side, e.amount, e.layer,
                  e.effective_at, e.recorded_at, e.posted_balance_after, e.pending_balance_after, e.hash,
                  e.chain_version, t.idempotency_key, encode(t.fingerprint, 'hex'), t.kind, t.description,
                  t.effective_at, t.recorded_at, t.metadata::text, t.created_xact::text,
                  ledger.transaction_hash(row(t.*)::ledger.transactions)
             from ledger.entries e join ledger.transactions t on t.id = e.transaction_id
            where e.account_id = %s order by e.account_version""", (ids[WALLET_U1],)).fetchall()
    previous = genesis_hash
    for row in rows:
        assert row[12] == 2
        key, fingerprint, kind, description, effective_at, recorded_at, metadata, xact = row[13:21]

        def field(text):
            return "-" if text is None else f"{len(text.encode())}:{text}"
        # As docs/design.md spells it: no link, no expiry, not a hold.
        encoding = "|".join(["transaction", field(str(row[2])), field(key), field(fingerprint), field(kind),
                             field(description), field(str(epoch_us(effective_at))),
                             field(str(epoch_us(recorded_at))), field(metadata), field("false"), "-", "-", "-",
                             "-", field(xact)])
        transaction_sha256 = hashlib.sha256(encoding.encode()).digest()
        assert transaction_sha256 == bytes(row[21])
        payload = entry_payload(*row[:11]) + b"|" + transaction_sha256.hex().encode()
        assert payload == entry_payload_v2(*row[:11], transaction_sha256)
        previous = chain_hash(previous, payload)
        assert previous == bytes(row[11])
    head = conn.execute("select last_hash from ledger.balances where account_id = %s", (ids[WALLET_U1],)).fetchone()[0]
    assert bytes(head) == previous


@pytest.mark.parametrize("statement, expected", [
    ("update ledger.entries set amount = amount + 1 where account_id = %s and account_version = 2",
     "entry version 2"),
    ("update ledger.entries set posted_balance_after = 1, pending_balance_after = 1"
     " where account_id = %s and account_version = 1",
     "balances after"),
    ("update ledger.entries set effective_at = (effective_at at time zone 'UTC' - interval '1 day') at time zone 'UTC'"
     " where account_id = %s and account_version = 3",
     "hash does not chain"),
    ("delete from ledger.entries where account_id = %s and account_version = 2", "version follows 1"),
    ("update ledger.entries set recorded_at = (recorded_at at time zone 'UTC' - interval '1 hour') at time zone 'UTC'"
     " where account_id = %s and account_version = 3",
     "before the previous entry"),
    ("update ledger.balances set posted_credits = posted_credits + 1 where account_id = %s", "projection"),
])
def test_verify_catches_an_edit_made_with_triggers_off(conn, statement, expected):
    ids = _book_with_history(conn)
    _tamper(conn, statement, ids[WALLET_U1])
    report = verify(conn, progress=None)
    assert not report.ok
    assert expected in report.problems[0] and WALLET_U1 in report.problems[0], report.problems


def test_verify_catches_a_one_sided_edit_that_keeps_every_chain_valid(conn):
    """An attacker who rewrites an entry and recomputes its chain and the projection still
    breaks the transaction's balance and the trial balance."""
    ids = _book_with_history(conn)
    _tamper(conn, "update ledger.entries set amount = amount + 5 where account_id = %s and account_version = 1",
            ids[BANK])
    rows = conn.execute(
        """select account_id, account_version, transaction_id, currency, side, amount, layer, effective_at,
                  recorded_at, posted_balance_after, pending_balance_after
             from ledger.entries where account_id = %s order by account_version""", (ids[BANK],)).fetchall()
    previous, posted = genesis_hash, 0
    for row in rows:
        posted += row[5]
        fixed = row[:9] + (posted, posted)
        previous = chain_hash(previous, entry_payload(*fixed))
        _tamper(conn, """update ledger.entries set posted_balance_after = %s, pending_balance_after = %s, hash = %s
                          where account_id = %s and account_version = %s""", posted, posted, previous, row[0], row[1])
    _tamper(conn, "update ledger.balances set posted_debits = %s, last_hash = %s where account_id = %s",
            posted, previous, ids[BANK])
    report = verify(conn, progress=None, stop_at_first=False)
    assert any("does not balance" in p for p in report.problems), report.problems
    assert any("trial balance CNY posted" in p for p in report.problems), report.problems


def test_verify_rebuilds_the_pending_balance_after_each_entry(conn):
    """A pending balance after rewritten with its chain and head recomputed: only the rebuilt
    balance can tell."""
    ids = _book_with_history(conn)
    rows = conn.execute(
        """select account_id, account_version, transaction_id, currency, side, amount, layer, effective_at,
                  recorded_at, posted_balance_after, pending_balance_after
             from ledger.entries where account_id = %s order by account_version""", (ids[BANK],)).fetchall()
    previous = genesis_hash
    for row in rows:
        pending = row[10] + (7 if row[1] == 1 else 0)
        previous = chain_hash(previous, entry_payload(*row[:10], pending))
        _tamper(conn, """update ledger.entries set pending_balance_after = %s, hash = %s
                          where account_id = %s and account_version = %s""", pending, previous, row[0], row[1])
    _tamper(conn, "update ledger.balances set last_hash = %s where account_id = %s", previous, ids[BANK])
    problems = verify(conn, progress=None).problems
    assert len(problems) == 1 and problems[0].startswith(f"account {BANK} entry version 1 "), problems
    assert problems[0].endswith("balances after (1000, 1007) differ from the sum of entries (1000, 1000)")


def test_verify_refuses_a_projection_version_without_entries(conn):
    ids = _book_with_history(conn)
    _tamper(conn, "update ledger.balances set version = 1 where account_id = %s", ids[WALLET_U2])
    assert verify(conn, progress=None).problems == [
        f"account {WALLET_U2}: projection has version 1 but there are no entries"]


def test_verify_compares_the_projections_head_hash(conn):
    """Balances and version intact, only the head hash in the projection changed: still broken."""
    ids = _book_with_history(conn)
    _tamper(conn, "update ledger.balances set last_hash = sha256(last_hash) where account_id = %s", ids[MERCHANT_M1])
    report = verify(conn, progress=None)
    assert len(report.problems) == 1, report.problems
    assert report.problems[0].startswith(f"account {MERCHANT_M1}: projection (1, 0, 300, 0, 0, ")


@pytest.mark.parametrize("statement", [
    "update ledger.open_holds set amount_out = amount_out + 1",
    "delete from ledger.open_holds",
    "update ledger.open_holds set amount_out = amount_in, amount_in = amount_out",
])
def test_verify_compares_the_open_holds_projection(conn, statement):
    _book_with_history(conn)
    hold_id = post_one(conn, Hold("h", "payment.authorize", [Leg(WALLET_U1, Side.DEBIT, 10),
                                                             Leg(MERCHANT_M1, Side.CREDIT, 10)])).transaction_id
    assert verify(conn, progress=None).ok
    _tamper(conn, statement)
    assert verify(conn, progress=None).problems == [f"open holds projection differs from the journal at hold {hold_id}"]


def test_the_digest_changes_with_every_posting_and_with_tampering(conn):
    ids = _book_with_history(conn)
    first = audit_digest(conn)
    # Recomputed outside the database from the heads (docs/design.md, "Hash chain").
    heads = conn.execute("select account_id, version, last_hash from ledger.balances order by account_id").fetchall()
    lines = "\n".join(f"{account_id}:{version}:{bytes(head).hex()}" for account_id, version, head in heads)
    assert first.digest == hashlib.sha256(lines.encode()).hexdigest()
    assert (first.accounts, first.entries) == (len(heads), sum(version for _, version, _ in heads)) == (len(ids), 6)
    assert audit_digest(conn).digest == first.digest
    top_up(conn, WALLET_U1, 1, "t3")
    second = audit_digest(conn)
    assert second.digest != first.digest and second.entries == first.entries + 2
    _tamper(conn, "update ledger.balances set last_hash = sha256(last_hash) where account_id = %s", ids[MERCHANT_M1])
    assert audit_digest(conn).digest != second.digest


def test_the_verify_command_exits_non_zero_and_names_the_break(db_url, monkeypatch, capsys):
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = _book_with_history(conn)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["verify"]) == 0
    assert "OK:" in capsys.readouterr().out
    with psycopg.connect(db_url, autocommit=True) as conn:
        _tamper(conn, "update ledger.entries set amount = 999 where account_id = %s and account_version = 1",
                ids[MERCHANT_M1])
    assert main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "BROKEN: account liabilities:merchants:M1 entry version 1" in out


def test_verify_shows_progress_on_a_terminal(conn):
    _book_with_history(conn)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    verify(conn, progress=terminal)
    assert "chains: 6/6 (100%)" in terminal.getvalue()


def test_verify_beside_postings_in_flight_finds_nothing(conn, db_url):
    """Postings that commit while verify reads are never damage: on one server verify reads one
    snapshot; on a cluster each worker has its own, and the checks across accounts (trial balance,
    each transaction's balance and legs) take the transactions below the journal horizon only."""
    _book_with_history(conn)
    done = threading.Event()
    errors: list[Exception] = []

    def poster() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as writer:
                for i in range(60):
                    top_up(writer, (WALLET_U1, WALLET_U2)[i % 2], 1 + i, f"busy-{i}")
                    post_one(writer, spend((WALLET_U1, WALLET_U2)[i % 2], 1, f"busy-spend-{i}"))
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=poster)
    thread.start()
    reports = []
    try:
        while not done.is_set() or not reports:
            reports.append(verify(conn, progress=None))
    finally:
        thread.join()
    assert not errors, errors
    assert all(r.ok for r in reports), [r.problems for r in reports if not r.ok]
    assert verify(conn, progress=None).transactions == 3 + 120
