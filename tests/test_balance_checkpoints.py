"""Balance checkpoints: every opening balance and balance as of a time read through them equals
the direct sum of the entries, at every start and every cut, backdated postings before and after
a checkpoint included; sweeps run beside posting; verify recomputes them and names a tampered
one; the application may sweep but not write a checkpoint; a database with history gets them
after the migration from the job."""

from __future__ import annotations

import io
import random
import re
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from book import BANK, MERCHANT_M1, open_book
from triggers_off import triggers_off

from ledger.audit import verify
from ledger.balance_checkpoints import posted_before, sweep_account, sweep_all, verify_balance_checkpoints
from ledger.balances import balance
from ledger.errors import ValidationError
from ledger.migrate import definitions, migrate, sql_dir
from ledger.posting import Leg, Side, Transfer, post
from ledger.statements import opening_balance, statement_totals
from ledger_cli.main import main

DAY = datetime(2026, 3, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _tamper(conn, statement: str, *params) -> None:
    """As superuser with triggers (and so the append-only guards) off."""
    with conn.transaction():
        triggers_off(conn)
        conn.execute(statement, params)


def _transfer(key: str, amount: int, at: datetime, *, into_merchant: bool = True) -> Transfer:
    legs = [Leg(BANK, Side.DEBIT, amount), Leg(MERCHANT_M1, Side.CREDIT, amount)]
    if not into_merchant:  # out of the merchant: its balance falls
        legs = [Leg(MERCHANT_M1, Side.DEBIT, amount), Leg(BANK, Side.CREDIT, amount)]
    return Transfer(key, "test.move", legs, effective_at=at)


def _entries(conn, account_id: int) -> list[tuple[datetime, datetime, int, int]]:
    """(effective_at, recorded_at, version, signed amount) of the account's posted entries."""
    return conn.execute("""select e.effective_at, e.recorded_at, e.account_version,
                                  case when e.side = a.normal_side then e.amount else -e.amount end
                             from ledger.entries e join ledger.accounts a on a.id = e.account_id
                            where e.account_id = %s and e.layer = 'posted'""", (account_id,)).fetchall()


def _starts(rows) -> list[datetime]:
    """Every position a period can start at: each entry's effective time, just before and after."""
    times = {r[0] for r in rows}
    return sorted(times | {t - _MICROSECOND for t in times} | {t + _MICROSECOND for t in times}
                  | {DAY - timedelta(days=400), DAY + timedelta(days=400)})


def _check_everywhere(conn, account_id: int, *, must_use_checkpoints: bool) -> int:
    """posted_before, the opening balance and the balance as of every start, at every cut, against
    the direct sum; the number of comparisons read through the checkpoints."""
    rows = _entries(conn, account_id)
    cuts = sorted({r[1] for r in rows})
    used = 0
    for known_at in cuts:
        for start in _starts(rows):
            expected = sum(signed for effective_at, recorded_at, _, signed in rows
                           if effective_at < start and recorded_at <= known_at)
            summed = posted_before(conn, account_id, start, known_at)
            if summed is not None:
                used += 1
                assert summed == expected, (start, known_at)
            assert opening_balance(conn, account_id, start, known_at) == expected, (start, known_at)
    latest = cuts[-1]
    for start in _starts(rows):
        if must_use_checkpoints:
            assert posted_before(conn, account_id, start, latest) is not None, start
        expected = sum(signed for effective_at, _, _, signed in rows if effective_at <= start)
        assert balance(conn, account_id, as_of=start, known_at=latest).posted == expected, start
    return used


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_checkpoints_give_the_direct_sum_at_every_start_and_cut(conn, seed):
    """Random batches with random effective times (many backdated behind checkpoints already
    written, some at the same instant), swept with a spacing of 3 now and then: before and after
    each sweep every start at every cut equals the direct sum."""
    ids = open_book(conn)
    merchant = ids[MERCHANT_M1]
    rng = random.Random(seed)
    key = 0
    used = 0
    for batch in range(8):
        requests = []
        for _ in range(rng.randint(1, 6)):
            key += 1
            at = DAY + timedelta(hours=rng.randint(0, 24 * 20))
            requests.append(_transfer(f"r{seed}-{key}", rng.randint(1, 500), at, into_merchant=rng.random() < 0.7))
        post(conn, requests)
        if batch % 3 != 2:
            sweep_account(conn, merchant, every=3)
        used += _check_everywhere(conn, merchant, must_use_checkpoints=batch % 3 != 2)
    assert used > 0
    rewritten = conn.execute("""select count(*) from (select 1 from ledger.balance_checkpoints where account_id = %s
                                 group by effective_at, entry_id having count(*) > 1) x""", (merchant,)).fetchone()[0]
    assert rewritten > 0, "no backdated entry made a checkpoint be written again"
    assert verify(conn, progress=None).ok


def test_a_backdated_entry_rewrites_the_checkpoints_after_it_and_none_before(conn):
    ids = open_book(conn)
    merchant = ids[MERCHANT_M1]
    post(conn, [_transfer(f"d{day}", 10 * (day + 1), DAY + timedelta(days=day)) for day in range(10)])
    assert sweep_account(conn, merchant, every=3) == 3  # before the 4th, 7th and 10th entries
    first = conn.execute("""select effective_at, account_version, posted_balance, posted_entries
                              from ledger.balance_checkpoints where account_id = %s order by effective_at""",
                         (merchant,)).fetchall()
    assert [(r[0], r[2], r[3]) for r in first] == [
        (DAY + timedelta(days=3), 60, 3), (DAY + timedelta(days=6), 210, 6), (DAY + timedelta(days=9), 450, 9)]

    # Between the first and second checkpoints: read before the sweep (the entries recorded since
    # it are added), then swept: the second and third are written again, the first is not.
    post(conn, [_transfer("late-1", 1000, DAY + timedelta(days=4, hours=12))])
    _check_everywhere(conn, merchant, must_use_checkpoints=True)
    # Written again from the checkpoint before it: the two after it, and new ones every 3 entries.
    assert sweep_account(conn, merchant, every=3) == 4
    # Before the first checkpoint and after the last.
    post(conn, [_transfer("late-2", 7, DAY - timedelta(days=1)), _transfer("late-3", 5, DAY + timedelta(days=30))])
    _check_everywhere(conn, merchant, must_use_checkpoints=True)
    sweep_account(conn, merchant, every=3)
    _check_everywhere(conn, merchant, must_use_checkpoints=True)
    newest = conn.execute("""select distinct on (effective_at, entry_id) effective_at, posted_balance, posted_entries
                               from ledger.balance_checkpoints where account_id = %s
                              order by effective_at, entry_id, account_version desc""", (merchant,)).fetchall()
    rows = _entries(conn, merchant)
    for effective_at, balance_before, entries_before in newest:
        assert balance_before == sum(r[3] for r in rows if r[0] < effective_at)
        assert entries_before == sum(1 for r in rows if r[0] < effective_at)
    written = dict(conn.execute("""select effective_at, count(*) from ledger.balance_checkpoints where account_id = %s
                                    group by effective_at""", (merchant,)).fetchall())
    assert written[DAY + timedelta(days=3)] == 2  # first, and after late-2 only: late-1 came after it
    assert written[DAY + timedelta(days=6)] == 3  # first, after late-1 and after late-2
    # No more than 3 entries before the first checkpoint, nor between two.
    positions = [r[0] for r in newest]
    for low, high in zip([datetime.min.replace(tzinfo=UTC), *positions[:-1]], positions, strict=True):
        assert sum(1 for r in rows if low <= r[0] < high) <= 3, (low, high)
    assert verify(conn, progress=None).ok


def test_statement_figures_are_the_same_with_and_without_checkpoints(conn):
    ids = open_book(conn)
    merchant = ids[MERCHANT_M1]
    post(conn, [_transfer(f"s{i}", i + 1, DAY + timedelta(hours=i)) for i in range(40)])
    sweep_all(conn, every=4, progress=None)
    post(conn, [_transfer("back", 999, DAY + timedelta(hours=3, minutes=30))])
    known_at = conn.execute("select clock_timestamp()").fetchone()[0]
    for hours in range(0, 42, 5):
        start = DAY + timedelta(hours=hours)
        with_checkpoints = statement_totals(conn, merchant, start, start + timedelta(hours=7), known_at)
        assert posted_before(conn, merchant, start, known_at) is not None
        direct = opening_balance(conn, merchant, start, known_at, use_checkpoints=False)
        assert with_checkpoints.opening == direct


def test_sweeps_beside_concurrent_posting_stay_exact(db_url):
    """One client posts (many backdated), another sweeps over and over meanwhile: every sweep sees
    a whole version, and afterwards every figure is the direct sum and verify passes."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        merchant = open_book(conn)[MERCHANT_M1]
    done = threading.Event()
    errors: list[Exception] = []

    def poster() -> None:
        rng = random.Random(7)
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                for batch in range(40):
                    post(conn, [_transfer(f"c{batch}-{i}", rng.randint(1, 50), DAY + timedelta(minutes=rng.randint(0, 5000)))
                                for i in range(rng.randint(1, 4))])
        except Exception as error:  # noqa: BLE001 - any failure is reported by the main thread
            errors.append(error)
        finally:
            done.set()

    def sweeper() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                while not done.is_set():
                    sweep_account(conn, merchant, every=5)
        except Exception as error:  # noqa: BLE001 - any failure is reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=poster), threading.Thread(target=sweeper), threading.Thread(target=sweeper)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with psycopg.connect(db_url, autocommit=True) as conn:
        sweeps = conn.execute("select count(*) from ledger.balance_checkpoint_sweeps where account_id = %s",
                              (merchant,)).fetchone()[0]
        assert sweeps >= 2
        sweep_account(conn, merchant, every=5)
        assert _check_everywhere(conn, merchant, must_use_checkpoints=True) > 0
        assert verify(conn, progress=None).ok


def _swept_book(conn) -> int:
    ids = open_book(conn)
    post(conn, [_transfer(f"v{i}", i + 1, DAY + timedelta(hours=i)) for i in range(12)])
    sweep_all(conn, every=3, progress=None)
    assert verify_balance_checkpoints(conn, progress=None) == []
    return ids[MERCHANT_M1]


def test_verify_names_a_checkpoint_whose_sum_was_altered(conn, monkeypatch, capsys, db_url):
    merchant = _swept_book(conn)
    _tamper(conn, """update ledger.balance_checkpoints set posted_balance = posted_balance + 1
                      where account_id = %s and posted_entries = 6""", merchant)
    report = verify(conn, progress=None)
    assert not report.ok
    assert "account liabilities:merchants:M1: balance checkpoint before entry" in report.problems[0]
    assert "the entries give" in report.problems[0]
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["verify"]) == 1
    assert "BROKEN: account liabilities:merchants:M1: balance checkpoint" in capsys.readouterr().out


def test_verify_names_a_forged_checkpoint_and_one_left_stale(conn):
    merchant = _swept_book(conn)
    # A row at a position where no entry of the account is.
    _tamper(conn, """insert into ledger.balance_checkpoints
                     (account_id, effective_at, entry_id, account_version, posted_balance, posted_entries)
                     values (%s, '2026-03-01T00:30:00Z', 1, 1, 0, 1)""", merchant)
    problems = verify_balance_checkpoints(conn, progress=None, stop_at_first=False)
    assert any("no posted entry of the account is at that position" in p for p in problems), problems
    assert len(problems) == 1


def test_verify_names_a_checkpoint_a_sweep_should_have_written_again(conn):
    merchant = _swept_book(conn)
    post(conn, [_transfer("back", 5, DAY - timedelta(hours=1))])
    # A sweep recorded without the rows it owed: readers would take stale sums.
    version = conn.execute("select version from ledger.balances where account_id = %s", (merchant,)).fetchone()[0]
    _tamper(conn, "insert into ledger.balance_checkpoint_sweeps (account_id, account_version, every_entries) "
                  "values (%s, %s, 3)", merchant, version)
    problems = verify_balance_checkpoints(conn, progress=None, stop_at_first=False)
    assert problems and all("did not write it again" in p for p in problems), problems
    assert len(problems) == 3  # every checkpoint of the account comes after the backdated entry


@pytest.mark.parametrize("every", [0, -1, 1_000_001, True, "3"])
def test_a_spacing_out_of_range_is_refused_and_nothing_is_written(conn, every):
    merchant = _swept_book(conn)
    before = conn.execute("select count(*) from ledger.balance_checkpoint_sweeps").fetchone()[0]
    with pytest.raises(ValidationError) as caught:
        sweep_account(conn, merchant, every=every)
    assert caught.value.field == "every"
    with pytest.raises(ValidationError):
        sweep_all(conn, every=every, progress=None)
    with pytest.raises(ValidationError) as caught:
        sweep_all(conn, every=3, min_new=every if every != 1_000_001 else -1, progress=None)
    assert caught.value.field == "min_new"
    assert conn.execute("select count(*) from ledger.balance_checkpoint_sweeps").fetchone()[0] == before


def test_the_command_refuses_a_bad_spacing_with_a_message(db_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["balance-checkpoints", "--every", "0"]) != 0
    assert "every must be between 1 and" in capsys.readouterr().err


def _attempt(conn, role: str, statement: str, params=None) -> str | None:
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(f"set local role {role}")
            conn.execute(statement, params)
    except psycopg.Error as error:
        return error.sqlstate
    return None


def test_the_application_may_sweep_and_read_but_not_write_a_checkpoint(conn):
    merchant = _swept_book(conn)
    post(conn, [_transfer("more", 5, DAY + timedelta(days=3))])
    assert _attempt(conn, "ledger_app", "select ledger.sweep_balance_checkpoints(%s, 3)", (merchant,)) is None
    for role in ("ledger_app", "ledger_auditor"):
        assert _attempt(conn, role, "select * from ledger.balance_checkpoints") is None
        assert _attempt(conn, role, "select * from ledger.balance_checkpoint_sweeps") is None
        for forged in ("""insert into ledger.balance_checkpoints
                          (account_id, effective_at, entry_id, account_version, posted_balance, posted_entries)
                          select account_id, effective_at, entry_id, account_version + 1, 0, 1
                            from ledger.balance_checkpoints limit 1""",
                       "insert into ledger.balance_checkpoint_sweeps (account_id, account_version, every_entries) "
                       "select account_id, 1000, 3 from ledger.balance_checkpoint_sweeps limit 1",
                       "update ledger.balance_checkpoints set posted_balance = 0",
                       "delete from ledger.balance_checkpoint_sweeps"):
            assert _attempt(conn, role, forged) == "42501", (role, forged)
    assert _attempt(conn, "ledger_auditor", "select ledger.sweep_balance_checkpoints(%s, 3)", (merchant,)) == "42501"
    # Append-only for the owner too.
    assert _attempt(conn, "postgres", "update ledger.balance_checkpoints set posted_balance = 0") == "LD015"
    assert _attempt(conn, "postgres", "delete from ledger.balance_checkpoint_sweeps") == "LD015"


def test_a_database_with_history_gets_checkpoints_after_the_migration(empty_db, tmp_path: Path, monkeypatch, capsys):
    """The schema as it was before balance checkpoints, a history posted on it, then the
    migration and the job, with its progress on a terminal."""
    _schema_before("0090", sql_dir(), tmp_path)
    assert not (tmp_path / "functions" / "balance_checkpoints.sql").exists()
    migrate(empty_db, directory=tmp_path)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        merchant = open_book(conn)[MERCHANT_M1]
        post(conn, [_transfer(f"old{i}", i + 1, DAY + timedelta(hours=i)) for i in range(25)])
        assert conn.execute("select to_regclass('ledger.balance_checkpoints')").fetchone()[0] is None
    migrate(empty_db)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert posted_before(conn, merchant, DAY + timedelta(hours=20), datetime.now(UTC)) is None
        report = sweep_all(conn, every=5, progress=terminal)
        assert report.accounts == 2 and report.entries == 50  # the bank and the merchant
        assert "balance checkpoints: 50/50 (100%)" in terminal.getvalue()
        assert conn.execute("select count(*) from ledger.balance_checkpoints where account_id = %s",
                            (merchant,)).fetchone()[0] == 4
        _check_everywhere(conn, merchant, must_use_checkpoints=True)
        assert verify(conn, progress=None).ok
    monkeypatch.setenv("DATABASE_URL", empty_db)
    assert main(["balance-checkpoints", "--every", "5"]) == 0
    assert "swept 0 accounts" in capsys.readouterr().out  # nothing new since

def _schema_before(version: str, source: Path, target: Path) -> None:
    """Into `target`: the migrations before `version`, and the definitions that need nothing a
    later migration creates (the list of append-only tables loses the later ones too)."""
    later_tables: set[str] = set()
    for path in source.glob("*.sql"):
        if re.fullmatch(r"\d{4}_\w+\.sql", path.name):
            if path.name < version:
                shutil.copy(path, target / path.name)
            else:
                later_tables |= set(re.findall(r"create table ledger\.(\w+)", path.read_text()))
    shutil.copy(source / "migrations_before_split.txt", target / "migrations_before_split.txt")
    shutil.copytree(source / "functions", target / "functions")
    append_only = target / "functions" / "append_only.sql"
    append_only.write_text(re.sub(rf",\s*'({'|'.join(later_tables)})'", "", append_only.read_text()))
    mentions_later = re.compile(rf"\bledger\.({'|'.join(later_tables)})\b")
    requires = {definition.name: set(definition.requires) for definition in definitions(target)}
    dropped = {name for name in requires if mentions_later.search((target / "functions" / f"{name}.sql").read_text())}
    while more := {name for name, needed in requires.items() if name not in dropped and needed & dropped}:
        dropped |= more  # and what requires a dropped definition
    for name in dropped:
        (target / "functions" / f"{name}.sql").unlink()


def test_a_sweep_in_a_snapshot_older_than_its_lock_is_refused(conn):
    """Under repeatable read the snapshot predates the lock, and could miss what the sweep before
    wrote: the sweep refuses to run there, writing nothing."""
    merchant = _swept_book(conn)
    post(conn, [_transfer("rr", 5, DAY + timedelta(days=3))] + [_transfer(f"rr{i}", 1, DAY) for i in range(3)])
    with pytest.raises(psycopg.errors.ActiveSqlTransaction), conn.transaction():
        conn.execute("set transaction isolation level repeatable read")
        sweep_account(conn, merchant, every=3)
    assert conn.execute("select count(*) from ledger.balance_checkpoint_sweeps where account_id = %s",
                        (merchant,)).fetchone()[0] == 1
    with conn.transaction():
        assert sweep_account(conn, merchant, every=3) > 0
