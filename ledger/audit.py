"""Tamper evidence: the entries' hash chains, the digest over their heads, and `verify`, which
rebuilds every balance from the entries and checks the projection, the chains, every
transaction's balance, the trial balance per currency and the balance checkpoints.

The canonical encodings (docs/design.md, "Hash chain"; also computed in SQL by the functions of
sql/functions/chain.sql, so an outside auditor can recompute them from the public tables). An
entry of chain version 1 (written before 0080) is

    account_id|account_version|transaction_id|currency|side|amount|layer|
    effective_at_us|recorded_at_us|posted_balance_after|pending_balance_after

in UTF-8, timestamps as microseconds since the Unix epoch; version 2 appends
`|<hex sha256 of its transaction's encoding>`. hash = sha256(previous hash || encoding), the
previous hash of an account's first entry being 32 zero bytes. Transactions, accounts, status
changes and account changes are encoded as a tag followed by `|field` per field, each field
written by `hash_field` (its UTF-8 length, ':' and its text; '-' for null).
"""

from __future__ import annotations

import bisect
import hashlib
import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

import psycopg

from ledger.balance_checkpoints import verify_balance_checkpoints
from ledger.distribution import accounts_by_shard, one_connection_per_node
from ledger.epoch import epoch_us
from ledger.progress import Progress

__all__ = [
    "genesis_hash", "entry_payload", "entry_payload_v2", "chain_hash", "hash_field", "transaction_hash",
    "account_record_hash", "status_change_payload", "account_change_payload", "Digest", "audit_digest",
    "VerifyReport", "verify",
]

genesis_hash = bytes(32)
_FETCH_ROWS = 10_000


def entry_payload(
    account_id: int, account_version: int, transaction_id: int, currency: str, side: str, amount: int,
    layer: str, effective_at: datetime, recorded_at: datetime, posted_after: int, pending_after: int,
) -> bytes:
    return "|".join(str(part) for part in (
        account_id, account_version, transaction_id, currency, side, amount, layer,
        epoch_us(effective_at), epoch_us(recorded_at), posted_after, pending_after,
    )).encode()


def entry_payload_v2(
    account_id: int, account_version: int, transaction_id: int, currency: str, side: str, amount: int,
    layer: str, effective_at: datetime, recorded_at: datetime, posted_after: int, pending_after: int,
    transaction_sha256: bytes,
) -> bytes:
    return entry_payload(account_id, account_version, transaction_id, currency, side, amount, layer,
                         effective_at, recorded_at, posted_after, pending_after) + b"|" + transaction_sha256.hex().encode()


def chain_hash(previous: bytes, payload: bytes) -> bytes:
    return hashlib.sha256(previous + payload).digest()


def hash_field(value: object) -> str:
    """A field of a version 2 encoding: '-' for null, else its UTF-8 length in bytes, ':', its text.

    Timestamps are microseconds since the epoch, booleans `true`/`false`, jsonb its text as
    PostgreSQL prints it (`metadata::text`), bytes in lowercase hex.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = str(epoch_us(value))
    elif isinstance(value, (bytes, memoryview)):
        text = bytes(value).hex()
    else:
        text = str(value)
    return f"{len(text.encode())}:{text}"


def _encoding(tag: str, fields: tuple[object, ...]) -> bytes:
    return "|".join([tag, *(hash_field(value) for value in fields)]).encode()


def transaction_hash(
    transaction_id: int, idempotency_key: str, fingerprint: bytes, kind: str, description: str,
    effective_at: datetime, recorded_at: datetime, metadata_text: str, is_hold: bool, expires_at: datetime | None,
    reverses_id: int | None, resolves_hold_id: int | None, hold_action: str | None, created_xact: str,
) -> bytes:
    return hashlib.sha256(_encoding("transaction", (
        transaction_id, idempotency_key, fingerprint, kind, description, effective_at, recorded_at, metadata_text,
        is_hold, expires_at, reverses_id, resolves_hold_id, hold_action, created_xact))).digest()


def account_record_hash(
    account_id: int, code: str, account_type: str, normal_side: str, currency: str, holder_id: str | None,
    created_at: datetime, created_xact: str | None,
) -> bytes:
    """sha256 of the fields of an account that never change."""
    return hashlib.sha256(_encoding("account", (
        account_id, code, account_type, normal_side, currency, holder_id, created_at, created_xact))).digest()


def status_change_payload(
    change_id: int, account_id: int, status: str, reason: str, changed_at: datetime, created_xact: str | None,
) -> bytes:
    return _encoding("status", (change_id, account_id, status, reason, changed_at, created_xact))


def account_change_payload(
    change_id: int, account_id: int, name: str, min_balance: int | None, max_balance: int | None,
    metadata_text: str, changed_at: datetime, created_xact: str | None,
) -> bytes:
    return _encoding("change", (change_id, account_id, name, min_balance, max_balance, metadata_text, changed_at,
                                created_xact))


@dataclass(frozen=True)
class Digest:
    digest: str            # sha256 over "account_id:version:head_hash" lines in account id order
    accounts: int
    entries: int
    taken_at: datetime


def audit_digest(conn: psycopg.Connection[Any]) -> Digest:
    """A digest over every account's chain head; keep it to check the journal against later."""
    row = conn.execute(
        """select encode(sha256(convert_to(coalesce(string_agg(
                      b.account_id || ':' || b.version || ':' || encode(b.last_hash, 'hex'), E'\\n'
                      order by b.account_id), ''), 'UTF8')), 'hex'),
                  count(*), coalesce(sum(b.version), 0), clock_timestamp()
             from ledger.balances b"""
    ).fetchone()
    assert row is not None
    return Digest(row[0], int(row[1]), int(row[2]), row[3])


@dataclass
class VerifyReport:
    accounts: int = 0
    entries: int = 0
    transactions: int = 0
    currencies: dict[str, int] = field(default_factory=dict)  # currency -> posted debits total
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    conn: psycopg.Connection[Any], *, progress: TextIO | None = sys.stderr,
    say: Callable[[str], None] = lambda line: None, stop_at_first: bool = True,
) -> VerifyReport:
    """Check the whole journal; the report's problems name the first broken things found.

    Runs in one repeatable-read snapshot (its own, unless the caller has a transaction open), so
    postings made meanwhile cannot look like damage. On a cluster each worker has a snapshot of
    its own (Citus has none across nodes), so in its own transaction the checks that span
    accounts on several workers (the trial balance, each transaction's balance and legs) take
    only the transactions below the journal horizon read just before: those are committed on
    every worker and seen by every snapshot taken after it.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return _verify(conn, progress, say, stop_at_first, None)
    settled = _settled_below(conn)
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        return _verify(conn, progress, say, stop_at_first, settled)


# On a cluster only (none on one server): the journal horizon's xmin (sql/functions/journal_horizon.sql).
_SETTLED_SQL = "select case when ledger.distributed() then (select h.xmin::text from ledger.journal_horizon() h) end"


def _settled_below(conn: psycopg.Connection[Any]) -> int | None:
    row = conn.execute(_SETTLED_SQL).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _verify(
    conn: psycopg.Connection[Any], progress: TextIO | None, say: Callable[[str], None], stop_at_first: bool,
    settled: int | None,
) -> VerifyReport:
    report = VerifyReport()
    distributed = one_connection_per_node(conn)
    accounts = {row[0]: (row[1], row[2], row[3]) for row in conn.execute(
        "select id, code, normal_side, currency from ledger.accounts")}
    projection = {row[0]: row[1:] for row in conn.execute(
        """select account_id, version, posted_debits, posted_credits, pending_debits, pending_credits, last_hash
             from ledger.balances""")}
    report.accounts = len(accounts)
    total = sum(p[0] for p in projection.values())
    say(f"accounts: {len(accounts):,}; entries in the projection: {total:,}")

    _verify_chains(conn, (distributed, settled), accounts, projection, report, Progress(progress, total, "chains"),
                   stop_at_first)
    if report.ok or not stop_at_first:
        _verify_transactions(conn, report, distributed, settled)
    if report.ok or not stop_at_first:
        _verify_account_history(conn, report)
    if report.ok or not stop_at_first:
        _verify_open_holds(conn, report)
    if report.ok or not stop_at_first:
        report.problems.extend(verify_balance_checkpoints(conn, progress=progress, stop_at_first=stop_at_first))
    say(f"entries checked: {report.entries:,}; transactions: {report.transactions:,}")
    for currency, debits in sorted(report.currencies.items()):
        say(f"trial balance {currency}: debits = credits = {debits:,}")
    return report


def _verify_chains(
    conn: psycopg.Connection[Any], cluster: tuple[bool, int | None], accounts: dict[int, tuple[str, str, str]],
    projection: dict[int, tuple[Any, ...]], report: VerifyReport, progress: Progress, stop_at_first: bool,
) -> None:
    """Walk every account's entries in version order, rebuilding balances and the hash chain.

    `cluster`: whether the ledger is distributed, and the transaction id below which the trial
    balance counts entries (None: all of them)."""
    distributed, settled = cluster
    seen: set[int] = set()
    state: dict[str, Any] = {}
    debits: dict[tuple[str, str], int] = {}
    credits: dict[tuple[str, str], int] = {}

    def close_account() -> None:
        account_id = state.get("account")
        if account_id is None:
            return
        expected = projection.get(account_id)
        rebuilt = (state["version"], state["pd"], state["pc"], state["nd"], state["nc"], state["hash"])
        if expected is None or tuple(expected[:5]) != rebuilt[:5] or bytes(expected[5]) != rebuilt[5]:
            report.problems.append(
                f"account {accounts[account_id][0]}: projection {_show(expected)} differs from entries {_show(rebuilt)}")

    rows = _entry_rows(conn, distributed, sorted(set(accounts) | set(projection)))
    try:
        for full_row in rows:
            row, chain_version, transaction = full_row[:12], full_row[12], full_row[13:]
            (account_id, version, transaction_id, currency, side, amount, layer, effective_at, recorded_at,
             posted_after, pending_after, stored_hash) = row
            if account_id != state.get("account"):
                close_account()
                if report.problems and stop_at_first:
                    break
                seen.add(account_id)
                state = {"account": account_id, "version": 0, "pd": 0, "pc": 0, "nd": 0, "nc": 0,
                         "posted": 0, "pending": 0, "hash": genesis_hash, "recorded": None}
            problem = _check_entry(accounts, state, row)
            if problem is None and transaction[0] is None:
                problem = "its transaction is missing"
            if problem is None:
                fields = (account_id, version, transaction_id, currency, side, amount, layer, effective_at,
                          recorded_at, posted_after, pending_after)
                payload = (entry_payload(*fields) if chain_version == 1
                           else entry_payload_v2(*fields, transaction_hash(*transaction)))
                state["hash"] = chain_hash(state["hash"], payload)
                if state["hash"] != bytes(stored_hash):
                    problem = ("hash does not chain (the entry or its transaction altered, or an entry "
                               "inserted or removed)")
            if problem is not None:
                code = accounts.get(account_id, ("?",))[0]
                report.problems.append(f"account {code} entry version {version} (transaction {transaction_id}): {problem}")
                if stop_at_first:
                    break
            report.entries += 1
            if settled is not None and transaction[13] is not None and int(transaction[13]) >= settled:
                progress.advance()
                continue
            book = debits if side == "debit" else credits
            book[(currency, layer)] = book.get((currency, layer), 0) + amount
            progress.advance()
        else:
            close_account()
    finally:
        rows.close()
    progress.finish()
    if report.problems and stop_at_first:
        return
    if distributed:
        _check_no_other_entries(conn, sorted(set(accounts) | set(projection)), report)
    for account_id, expected in projection.items():
        if account_id not in seen and expected[0] != 0:
            report.problems.append(f"account {accounts[account_id][0]}: projection has version {expected[0]} "
                                   "but there are no entries")
    for key in sorted(set(debits) | set(credits)):
        if debits.get(key, 0) != credits.get(key, 0):
            report.problems.append(f"trial balance {key[0]} {key[1]}: debits {debits.get(key, 0):,} "
                                   f"!= credits {credits.get(key, 0):,}")
    report.currencies = {c: v for (c, layer), v in debits.items() if layer == "posted"}


_ENTRY_ROWS_SQL = """
select e.account_id, e.account_version, e.transaction_id, e.currency, e.side, e.amount, e.layer,
       e.effective_at, e.recorded_at, e.posted_balance_after, e.pending_balance_after, e.hash,
       e.chain_version, t.id, t.idempotency_key, t.fingerprint, t.kind, t.description,
       t.effective_at, t.recorded_at, t.metadata::text, t.is_hold, t.expires_at, t.reverses_id,
       t.resolves_hold_id, t.hold_action, t.created_xact::text
  from ledger.entries e left join ledger.transactions t on t.id = e.transaction_id"""

# On a cluster: a page of one shard's entries, those of the accounts named (all on that shard,
# so Citus routes the statement there) after a position.
_SHARD_PAGE_SQL = _ENTRY_ROWS_SQL + """
 where e.account_id = any(%(accounts)s) and (e.account_id, e.account_version) > (%(account)s, %(version)s)
 order by e.account_id, e.account_version
 limit %(rows)s"""


def _entry_rows(conn: psycopg.Connection[Any], distributed: bool,
                account_ids: list[int]) -> Generator[tuple[Any, ...], None, None]:
    """Every entry with its transaction, each account's entries together in version order.

    On one server one cursor over the journal. On a cluster, shard by shard (an account's chain is
    on one shard): pages of one shard's accounts, each page one statement Citus routes to the
    worker that holds them, so the coordinator holds a page at a time and never merges shards."""
    if not distributed:
        with conn.cursor(name="verify_entries") as cur:
            cur.itersize = _FETCH_ROWS
            cur.execute(_ENTRY_ROWS_SQL + " order by e.account_id, e.account_version")
            yield from cur
        return
    for group in accounts_by_shard(conn, account_ids):
        after: tuple[int, int] = (0, 0)
        while group:
            page = conn.execute(_SHARD_PAGE_SQL, {"accounts": group, "account": after[0], "version": after[1],
                                                  "rows": _FETCH_ROWS}, prepare=False).fetchall()
            yield from page
            if len(page) < _FETCH_ROWS:
                break
            after = (int(page[-1][0]), int(page[-1][1]))
            group = group[bisect.bisect_left(group, after[0]):]  # the accounts not yet read to their end


def _check_no_other_entries(conn: psycopg.Connection[Any], account_ids: list[int], report: VerifyReport) -> None:
    """On a cluster the walk reads the entries of the accounts it knows (in accounts or in the
    projection): any other entry, of an account in neither, is named here."""
    row = conn.execute("select count(*) from ledger.entries").fetchone()
    if row is None or int(row[0]) == report.entries:
        return
    other = conn.execute(
        """select e.account_id, e.account_version, e.transaction_id from ledger.entries e
            where e.account_id <> all(%s) order by e.account_id, e.account_version limit 1""",
        (account_ids,)).fetchone()
    if other is not None:
        report.problems.append(f"account ? (id {other[0]}) entry version {other[1]} (transaction {other[2]}): "
                               "entry of an unknown account")


def _check_entry(accounts: dict[int, tuple[str, str, str]], state: dict[str, Any], row: tuple[Any, ...]) -> str | None:
    account_id, version, _, currency, side, amount, layer, _, recorded_at, posted_after, pending_after, _ = row
    if account_id not in accounts:
        return "entry of an unknown account"
    _, normal_side, account_currency = accounts[account_id]
    if version != state["version"] + 1:
        return f"version follows {state['version']} (an entry is missing or repeated)"
    state["version"] = version
    # "What was known at R" finds entries by version: recorded_at must not fall as it rises.
    if state["recorded"] is not None and recorded_at < state["recorded"]:
        return f"recorded at {recorded_at.isoformat()}, before the previous entry ({state['recorded'].isoformat()})"
    state["recorded"] = recorded_at
    if not isinstance(amount, int) or amount <= 0:
        return f"amount {amount} is not a positive integer"
    if currency != account_currency:
        return f"currency {currency} is not the account's {account_currency}"
    signed = amount if side == normal_side else -amount
    state["pending"] += signed
    if layer == "posted":
        state["posted"] += signed
        state["pd" if side == "debit" else "pc"] += amount
    else:
        state["nd" if side == "debit" else "nc"] += amount
    if posted_after != state["posted"] or pending_after != state["pending"]:
        return (f"balances after ({posted_after}, {pending_after}) differ from the sum of entries "
                f"({state['posted']}, {state['pending']})")
    return None


_UNBALANCED_SQL = """
select e.transaction_id, e.currency, e.layer, sum(case when e.side = 'debit' then e.amount else -e.amount end)
  from ledger.entries e
 group by e.transaction_id, e.currency, e.layer
having sum(case when e.side = 'debit' then e.amount else -e.amount end) <> 0
 order by e.transaction_id limit 1"""
# On a cluster, of the transactions below the horizon (see verify).
_UNBALANCED_SETTLED_SQL = """
select e.transaction_id, e.currency, e.layer, sum(case when e.side = 'debit' then e.amount else -e.amount end)
  from ledger.entries e join ledger.transactions t on t.id = e.transaction_id
 where t.created_xact < %(settled)s::text::xid8
 group by e.transaction_id, e.currency, e.layer
having sum(case when e.side = 'debit' then e.amount else -e.amount end) <> 0
 order by e.transaction_id limit 1"""
# One server: an index probe per transaction (a join with the legs counted in one pass is
# faster with fresh statistics, and took seconds instead of a tenth of one with stale ones).
_LONELY_SQL = """
select t.id from ledger.transactions t
 where (select count(*) from ledger.entries e where e.transaction_id = t.id) < 2
 order by t.id limit 1"""
# A cluster: the legs counted in one pass and joined, since Citus cannot plan a subquery over
# the distributed entries correlated with the reference table transactions.
_LONELY_JOINED_SQL = """
select t.id from ledger.transactions t
  left join (select e.transaction_id, count(*) as legs from ledger.entries e
              group by e.transaction_id) e on e.transaction_id = t.id
 where coalesce(e.legs, 0) < 2
 order by t.id limit 1"""
_LONELY_SETTLED_SQL = """
select t.id from ledger.transactions t
  left join (select e.transaction_id, count(*) as legs from ledger.entries e
              group by e.transaction_id) e on e.transaction_id = t.id
 where coalesce(e.legs, 0) < 2 and t.created_xact < %(settled)s::text::xid8
 order by t.id limit 1"""


def _verify_transactions(conn: psycopg.Connection[Any], report: VerifyReport, distributed: bool,
                         settled: int | None) -> None:
    row = conn.execute("select count(*) from ledger.transactions").fetchone()
    report.transactions = int(row[0]) if row else 0
    at = {"settled": str(settled)}
    bad = (conn.execute(_UNBALANCED_SQL) if settled is None else conn.execute(_UNBALANCED_SETTLED_SQL, at)).fetchone()
    if bad is not None:
        report.problems.append(f"transaction {bad[0]} does not balance in {bad[1]} {bad[2]}: off by {bad[3]}")
    if not distributed:
        lonely = conn.execute(_LONELY_SQL).fetchone()
    else:
        lonely = (conn.execute(_LONELY_JOINED_SQL) if settled is None else conn.execute(_LONELY_SETTLED_SQL, at)).fetchone()
    if lonely is not None:
        report.problems.append(f"transaction {lonely[0]} has fewer than two legs")


def _verify_account_history(conn: psycopg.Connection[Any], report: VerifyReport) -> None:
    """An account's name, limits, metadata and status are the latest of its recorded changes."""
    bad = conn.execute(
        """select a.code from ledger.accounts a
             left join lateral (select c.name, c.min_balance, c.max_balance, c.metadata from ledger.account_changes c
                                 where c.account_id = a.id order by c.id desc limit 1) c on true
             left join lateral (select s.status from ledger.account_status_changes s
                                 where s.account_id = a.id order by s.id desc limit 1) s on true
            where (a.name, a.min_balance, a.max_balance, a.metadata, a.status)
                  is distinct from (c.name, c.min_balance, c.max_balance, c.metadata, s.status)
            order by a.id limit 1""").fetchone()
    if bad is not None:
        report.problems.append(f"account {bad[0]}: its name, limits, metadata or status differ from its recorded "
                               "changes (account_changes, account_status_changes)")


def _verify_open_holds(conn: psycopg.Connection[Any], report: VerifyReport) -> None:
    """The open-holds projection equals the holds no transaction has resolved.

    Unresolved holds by an outer join, not `not exists`: Citus cannot plan a subquery correlated
    with the reference table transactions. Testing the join column for null keeps it an anti join
    on one server, as `not exists` was."""
    bad = conn.execute(
        """with expected as (
               select e.account_id, h.id as hold_id,
                      sum(case when e.side <> a.normal_side then e.amount else 0 end) as amount_out,
                      sum(case when e.side = a.normal_side then e.amount else 0 end) as amount_in
                 from ledger.transactions h
                 join ledger.entries e on e.transaction_id = h.id
                 join ledger.accounts a on a.id = e.account_id
                 left join ledger.transactions r on r.resolves_hold_id = h.id
                where h.is_hold and r.resolves_hold_id is null
                group by e.account_id, h.id)
           select coalesce(x.hold_id, o.hold_id)
             from expected x full join ledger.open_holds o using (account_id, hold_id)
            where x.amount_out is distinct from o.amount_out or x.amount_in is distinct from o.amount_in
            limit 1""").fetchone()
    if bad is not None:
        report.problems.append(f"open holds projection differs from the journal at hold {bad[0]}")


def _show(values: tuple[Any, ...] | None) -> str:
    if values is None:
        return "missing"
    return "(" + ", ".join(bytes(v).hex()[:12] if isinstance(v, (bytes, memoryview)) else str(v) for v in values) + ")"
