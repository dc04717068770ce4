"""Balance checkpoints: per-account sums of posted entries in effective order, so that an opening
balance or a balance as of an effective time reads a bounded number of entries wherever in a
long history it falls (docs/design.md, "Balance checkpoints").

A checkpoint (P, V) holds the sum and count of the account's posted entries before position P
(an entry's (effective_at, id)) among those with account_version <= V. A sweep
(`ledger.sweep_balance_checkpoints`, sql/functions/balance_checkpoints.sql) brings one account's
checkpoints up to its current version; `sweep_all` (the job `ledger-core balance-checkpoints`)
sweeps every account with enough entries recorded since its last sweep. The posting path does
not write them: see docs/benchmarks.md for the measurement behind that choice.

`ledger.posted_before` reads them; `verify_balance_checkpoints` (run by `ledger.audit.verify`)
recomputes every checkpoint from the entries, and checks that each was rewritten whenever a
sweep saw a backdated entry before it: a reader relies on both.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import psycopg

from ledger.errors import ValidationError
from ledger.progress import Progress

__all__ = ["every_entries_default", "every_entries_max", "recorded_since_max", "SweepReport", "sweep_account",
           "sweep_all", "posted_before", "verify_balance_checkpoints"]

# Entries between two checkpoints: a reader sums at most this many between the checkpoint and
# its start (docs/benchmarks.md, "Balance checkpoints").
every_entries_default = 250
every_entries_max = 1_000_000
# Readers use checkpoints while at most this many of the account's entries were recorded after
# its newest sweep; beyond, they sum as if there were none (ledger/statements.py).
recorded_since_max = 10_000


@dataclass
class SweepReport:
    accounts: int = 0
    entries: int = 0          # entries recorded since the accounts' previous sweeps
    checkpoints: int = 0      # checkpoint rows written


def _check_every(every: int) -> None:
    if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= every_entries_max:
        raise ValidationError(f"every must be between 1 and {every_entries_max:,}", field="every")


def sweep_account(conn: psycopg.Connection[Any], account_id: int, *, every: int = every_entries_default) -> int:
    """Bring one account's checkpoints up to its current version; the number of rows written."""
    _check_every(every)
    row = conn.execute("select ledger.sweep_balance_checkpoints(%s, %s)", (account_id, every)).fetchone()
    assert row is not None
    return int(row[0])


# Accounts with at least %(min_new)s entries recorded since their newest sweep (all of them the
# first time), most behind first.
_BEHIND_SQL = """
select b.account_id, b.version - coalesce(s.version, 0) as behind
  from ledger.balances b
  left join lateral (select max(s.account_version) as version from ledger.balance_checkpoint_sweeps s
                      where s.account_id = b.account_id) s on true
 where b.version - coalesce(s.version, 0) >= greatest(%(min_new)s, 1)
 order by behind desc, b.account_id
"""


def sweep_all(conn: psycopg.Connection[Any], *, every: int = every_entries_default, min_new: int | None = None,
              progress: TextIO | None = sys.stderr) -> SweepReport:
    """Sweep every account with at least `min_new` (default: `every`) entries recorded since its
    last sweep, one transaction per account (on an autocommit connection), with progress counted
    in entries."""
    _check_every(every)
    threshold = every if min_new is None else min_new
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ValidationError("min_new must be a whole number of entries, at least 1", field="min_new")
    behind = [(int(r[0]), int(r[1])) for r in conn.execute(_BEHIND_SQL, {"min_new": threshold}).fetchall()]
    report = SweepReport()
    meter = Progress(progress, sum(b for _, b in behind), "balance checkpoints")
    for account_id, entries in behind:
        report.checkpoints += sweep_account(conn, account_id, every=every)
        report.accounts += 1
        report.entries += entries
        meter.advance(entries)
    meter.finish()
    return report


def posted_before(conn: psycopg.Connection[Any], account_id: int, before: datetime, known_at: datetime) -> int | None:
    """The posted balance from entries effective before `before`, as known at `known_at`, read
    from the checkpoints; None when the account has no sweep recent enough to use."""
    row = conn.execute("select ledger.posted_before(%s, %s, %s, %s)",
                       (account_id, before, known_at, recorded_since_max)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


class _Fenwick:
    """Prefix sums over account versions 1..size (sum and count of the entries added so far)."""

    def __init__(self, size: int) -> None:
        self.sums = [0] * (size + 1)
        self.counts = [0] * (size + 1)

    def add(self, version: int, amount: int) -> None:
        sums, counts, size = self.sums, self.counts, len(self.sums) - 1
        while version <= size:
            sums[version] += amount
            counts[version] += 1
            version += version & -version

    def upto(self, version: int) -> tuple[int, int]:
        total = count = 0
        version = min(version, len(self.sums) - 1)
        while version > 0:
            total += self.sums[version]
            count += self.counts[version]
            version -= version & -version
        return total, count


_CHECKPOINTS_SQL = """
select c.account_id, c.effective_at, c.entry_id, c.account_version, c.posted_balance, c.posted_entries,
       -- The newest sweep before the position's next row (or the newest of all): the row must
       -- still be exact there, since a reader that saw that sweep takes it.
       (select max(s.account_version) from ledger.balance_checkpoint_sweeps s
         where s.account_id = c.account_id
           and s.account_version < coalesce((select min(n.account_version) from ledger.balance_checkpoints n
                                              where n.account_id = c.account_id and n.effective_at = c.effective_at
                                                and n.entry_id = c.entry_id
                                                and n.account_version > c.account_version),
                                            9223372036854775807)) as relied_until
  from ledger.balance_checkpoints c
 order by c.account_id, c.effective_at, c.entry_id, c.account_version
"""

_ENTRIES_SQL = """
select e.effective_at, e.id, e.account_version,
       case when e.side = a.normal_side then e.amount else -e.amount end
  from ledger.entries e join ledger.accounts a on a.id = e.account_id
 where e.account_id = %s and e.layer = 'posted'
 order by e.effective_at, e.id
"""


def verify_balance_checkpoints(conn: psycopg.Connection[Any], *, progress: TextIO | None = sys.stderr,
                               stop_at_first: bool = True) -> list[str]:
    """Recompute every balance checkpoint from the entries; a line per mismatch.

    Per account, one pass over its posted entries in effective order, adding each to prefix sums
    over versions, answers every checkpoint at its position: O(entries log entries). In one
    repeatable-read snapshot (the caller's, if a transaction is open)."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return _verify_all(conn, progress, stop_at_first)
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        return _verify_all(conn, progress, stop_at_first)


def _verify_all(conn: psycopg.Connection[Any], progress: TextIO | None, stop_at_first: bool) -> list[str]:
    problems: list[str] = []
    by_account: dict[int, list[tuple[Any, ...]]] = {}
    for row in conn.execute(_CHECKPOINTS_SQL):
        by_account.setdefault(int(row[0]), []).append(row)
    codes = {int(r[0]): r[1] for r in conn.execute(
        "select id, code from ledger.accounts where id = any(%s)", (list(by_account),))}
    sweeps = {int(r[0]): (int(r[1]), int(r[2])) for r in conn.execute(
        """select s.account_id, s.account_version, b.version from ledger.balance_checkpoint_sweeps s
             join ledger.balances b on b.account_id = s.account_id
            where s.account_version > b.version""")}
    for account_id, (swept, version) in sweeps.items():
        problems.append(f"account {codes.get(account_id, account_id)}: swept at version {swept}, "
                        f"beyond its last entry ({version})")
    total = sum(len(rows) for rows in by_account.values())
    meter = Progress(progress if total else None, total, "balance checkpoints")
    for account_id, checkpoints in by_account.items():
        if problems and stop_at_first:
            break
        problems.extend(_verify_account(conn, account_id, str(codes.get(account_id, account_id)), checkpoints))
        meter.advance(len(checkpoints))
    meter.finish()
    return problems[:1] if stop_at_first else problems


def _verify_account(conn: psycopg.Connection[Any], account_id: int, code: str,
                    checkpoints: list[tuple[Any, ...]]) -> list[str]:
    problems: list[str] = []
    newest = conn.execute("select version from ledger.balances where account_id = %s", (account_id,)).fetchone()
    tree = _Fenwick(int(newest[0]) if newest else 0)
    pending = iter(checkpoints)
    checkpoint = next(pending, None)
    with conn.cursor(name=f"verify_balance_checkpoints_{account_id}") as cur:
        cur.itersize = 10_000
        cur.execute(_ENTRIES_SQL, (account_id,))
        for effective_at, entry_id, version, signed in cur:
            while checkpoint is not None and (checkpoint[1], checkpoint[2]) <= (effective_at, entry_id):
                problems.extend(_check(code, checkpoint, tree, (checkpoint[1], checkpoint[2]) == (effective_at, entry_id)))
                checkpoint = next(pending, None)
            if checkpoint is None:
                break
            tree.add(int(version), int(signed))
    while checkpoint is not None:
        problems.extend(_check(code, checkpoint, tree, False))
        checkpoint = next(pending, None)
    return problems


def _check(code: str, checkpoint: tuple[Any, ...], tree: _Fenwick, at_entry: bool) -> list[str]:
    _, effective_at, entry_id, version, balance, entries, relied_until = checkpoint
    where = f"account {code}: balance checkpoint before entry {entry_id} ({effective_at.isoformat()}) at version {version}"
    if not at_entry:
        return [f"{where}: no posted entry of the account is at that position"]
    total, count = tree.upto(int(version))
    if (total, count) != (balance, entries):
        return [f"{where}: holds {balance} over {entries} entries, the entries give {total} over {count}"]
    if relied_until is not None and relied_until > version and tree.upto(int(relied_until))[1] != count:
        return [f"{where}: an entry recorded by the sweep at version {relied_until} comes before it, "
                "but the sweep did not write it again"]
    return []
