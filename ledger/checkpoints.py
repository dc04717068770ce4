"""Digests an auditor can keep, checkpoints that store them, and the check that the current
books extend, unchanged, the books a digest was taken of.

A digest is `v2:<position>:<hex>` (docs/design.md, "Hash chain"):
- position is a PostgreSQL snapshot (`pg_snapshot` text, "xmin:xmax:xip,..."): the books it
  covers are every row whose writing database transaction (`created_xact`) that snapshot sees,
  i.e. everything committed when the digest was taken (rows written before 0080 carry no
  created_xact and count as seen);
- hex is sha256 over one line per account the position sees, in account id order, joined by "\\n":
  `account_id:version:head:record_hash:status_count:status_head:change_count:change_head`
  (hashes in hex): the head of its entry chain (the entry of highest version in that journal;
  version 0 and 32 zero bytes without one), the sha256 of its fields that never change, and the
  count and head of its chains over status changes and over name/limit changes. Account versions
  are given out under a row lock held to commit, so what a snapshot sees of an account is always
  a prefix of its chain; entries of chain version 2 carry their transaction's hash, so the entry
  chains cover the transactions too.

Taking a digest reads the view ledger.account_heads (entry heads from the balances projection).
Checking one recomputes everything as of its position from the rows themselves, in Python, after
`ledger.audit.verify` has recomputed every entry chain: an entry or transaction edited in place
breaks a chain; one edited with its chain rewritten, or an account or its history edited,
changes a line. Either way the check names where: the chain walk names the account, entry
version and transaction, and a checkpoint (`ledger-core checkpoint` stores a digest with its
lines, append-only; `--export FILE` also writes them to a file kept outside the database) names
the first account whose line differs and which part of it.

Digests of version 1 (`v1:`, taken before 0080) hash the lines "account_id:version:head" of the
accounts with entries only; they are still checked that way.

Positions are the stored created_xact values compared with a snapshot, so they survive a dump
and restore of the database.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import psycopg

from ledger.audit import (
    account_change_payload,
    account_record_hash,
    chain_hash,
    genesis_hash,
    status_change_payload,
    verify,
)
from ledger.distribution import one_connection_per_node
from ledger.errors import ValidationError
from ledger.files import read_bounded

__all__ = [
    "Digest", "Checkpoint", "AccountHead", "CheckpointFile", "DigestCheck", "take_digest", "store_checkpoint",
    "list_checkpoints", "heads_as_of", "account_heads_as_of", "digest_of_heads", "digest_of_accounts",
    "parse_digest", "verify_digest", "export_checkpoint", "read_checkpoint_file", "digest_length_max",
    "note_length_max", "checkpoints_list_max", "checkpoint_file_bytes_max", "verify_digest_command",
]

digest_length_max = 20_000          # the xip list of a snapshot is bounded by max_connections
note_length_max = 200
checkpoints_list_max = 1_000
checkpoint_file_bytes_max = 1 << 30
_DIGEST = re.compile(r"v([12]):([0-9]+):([0-9]+):([0-9,]*):([0-9a-f]{64})")
_FILE_FORMAT = "ledger-core checkpoint v2"

# The same lines as digest_of_accounts, over the view ledger.account_heads as `h`.
_DIGEST_SQL = """encode(sha256(convert_to(coalesce(string_agg(
        h.account_id || ':' || h.version || ':' || encode(h.hash, 'hex') || ':' || encode(h.record_hash, 'hex')
        || ':' || h.status_count || ':' || encode(h.status_head, 'hex')
        || ':' || h.change_count || ':' || encode(h.change_head, 'hex'), E'\\n' order by h.account_id), ''),
        'UTF8')), 'hex')"""


@dataclass(frozen=True)
class Digest:
    digest: str            # v2:<position>:<hex>: keep this
    position: str
    accounts: int          # accounts it covers (version 1: accounts with a chain)
    entries: int           # entries in the journal it covers
    taken_at: datetime


@dataclass(frozen=True)
class Checkpoint:
    id: int
    digest: Digest
    note: str


@dataclass(frozen=True)
class AccountHead:
    """One account's line of a version 2 digest."""
    account_id: int
    version: int
    hash: bytes
    record_hash: bytes
    status_count: int
    status_head: bytes
    change_count: int
    change_head: bytes

    def line(self) -> str:
        return (f"{self.account_id}:{self.version}:{self.hash.hex()}:{self.record_hash.hex()}:"
                f"{self.status_count}:{self.status_head.hex()}:{self.change_count}:{self.change_head.hex()}")


@dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint as exported to a file the auditor keeps outside the database."""
    digest: str
    position: str
    heads: dict[int, AccountHead]
    codes: dict[int, str]


@dataclass(frozen=True)
class DigestCheck:
    digest: str
    position: str
    ok: bool
    recomputed: str        # the digest the current books give for that position
    problems: list[str] = field(default_factory=list)


def digest_of_heads(heads: Iterable[tuple[int, int, bytes]]) -> str:
    """Version 1: sha256 hex of the lines "account_id:version:head" of the accounts with entries."""
    text = "\n".join(f"{a}:{v}:{bytes(h).hex()}" for a, v, h in sorted(heads) if v > 0)
    return hashlib.sha256(text.encode()).hexdigest()


def digest_of_accounts(heads: Iterable[AccountHead]) -> str:
    """Version 2: sha256 hex of every account's line: what an auditor recomputes from the public tables."""
    text = "\n".join(h.line() for h in sorted(heads, key=lambda h: h.account_id))
    return hashlib.sha256(text.encode()).hexdigest()


def _parse(digest: str) -> tuple[int, str, str]:
    if not isinstance(digest, str) or not 0 < len(digest) <= digest_length_max:
        raise ValidationError(f"a digest is v2:<position>:<sha256 hex> of at most {digest_length_max} characters",
                              field="digest")
    match = _DIGEST.fullmatch(digest.strip())
    if match is None:
        raise ValidationError("a digest looks like v2:<xmin>:<xmax>:<xip,...>:<64 hex digits>, "
                              f"got {digest[:80]!r}", field="digest")
    return int(match.group(1)), f"{match.group(2)}:{match.group(3)}:{match.group(4)}", match.group(5)


def parse_digest(digest: str) -> tuple[str, str]:
    """(position, hex) of a digest string; a ValidationError names what is wrong."""
    _, position, hex_digest = _parse(digest)
    return position, hex_digest


_TAKE_SQL = f"""
select pg_current_snapshot()::text, {_DIGEST_SQL}, count(*), coalesce(sum(h.version), 0), clock_timestamp()
  from ledger.account_heads h
"""


def take_digest(conn: psycopg.Connection[Any]) -> Digest:
    """The digest of the books as committed now (one statement: one snapshot)."""
    row = conn.execute(_TAKE_SQL).fetchone()
    assert row is not None
    return Digest(f"v2:{row[0]}:{row[1]}", row[0], int(row[2]), int(row[3]), row[4])


# One statement, so the digest and the lines stored with it come from the same snapshot.
_STORE_SQL = f"""
with heads as (select * from ledger.account_heads),
taken as (select pg_current_snapshot()::text as position, {_DIGEST_SQL} as hex, count(*) as accounts,
                 coalesce(sum(h.version), 0) as entries
            from heads h),
checkpoint as (
    insert into ledger.checkpoints (digest, position, accounts, entries, note)
    select 'v2:' || t.position || ':' || t.hex, t.position, t.accounts, t.entries, %(note)s from taken t
    returning id, digest, position, accounts, entries, taken_at),
stored as (
    insert into ledger.checkpoint_heads (checkpoint_id, account_id, version, hash, record_hash, status_count,
                                         status_head, change_count, change_head)
    select c.id, h.account_id, h.version, h.hash, h.record_hash, h.status_count, h.status_head, h.change_count,
           h.change_head
      from checkpoint c, heads h)
select id, digest, position, accounts, entries, taken_at from checkpoint
"""


def store_checkpoint(conn: psycopg.Connection[Any], *, note: str = "") -> Checkpoint:
    """Take a digest and store it with its lines (append-only), e.g. daily from cron."""
    if not isinstance(note, str) or len(note) > note_length_max:
        raise ValidationError(f"note must be text of at most {note_length_max} characters", field="note")
    with conn.transaction():
        # It reads the balances of every shard and writes the reference table checkpoints.
        one_connection_per_node(conn)
        row = conn.execute(_STORE_SQL, {"note": note}).fetchone()
    assert row is not None
    return Checkpoint(int(row[0]), Digest(row[1], row[2], int(row[3]), int(row[4]), row[5]), note)


def list_checkpoints(conn: psycopg.Connection[Any], *, limit: int = 20) -> list[Checkpoint]:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= checkpoints_list_max:
        raise ValidationError(f"limit must be between 1 and {checkpoints_list_max}", field="limit")
    rows = conn.execute(
        """select id, digest, position, accounts, entries, taken_at, note
             from ledger.checkpoints order by id desc limit %s""", (limit,)).fetchall()
    return [Checkpoint(r[0], Digest(r[1], r[2], int(r[3]), int(r[4]), r[5]), r[6]) for r in rows]


_HEADS_SQL = """
with visible as (
    select e.account_id, max(e.account_version) as version
      from ledger.entries e join ledger.transactions t on t.id = e.transaction_id
     where pg_visible_in_snapshot(t.created_xact, %(position)s::pg_snapshot)
     group by e.account_id)
select v.account_id, v.version, e.hash
  from visible v join ledger.entries e on e.account_id = v.account_id and e.account_version = v.version
 order by v.account_id
"""


def heads_as_of(conn: psycopg.Connection[Any], position: str) -> dict[int, tuple[int, bytes]]:
    """Per account, (version, hash) of its chain head in the journal as of `position`."""
    try:
        with conn.transaction():
            rows = conn.execute(_HEADS_SQL, {"position": position}).fetchall()
    except psycopg.errors.InvalidTextRepresentation:
        raise ValidationError(f"position {position[:80]!r} is not a snapshot", field="digest") from None
    return {r[0]: (int(r[1]), bytes(r[2])) for r in rows}


# Rows the position sees; rows written before 0080 carry no created_xact and precede every digest.
_SEEN = "(x.created_xact is null or pg_visible_in_snapshot(x.created_xact, %(position)s::pg_snapshot))"


def account_heads_as_of(conn: psycopg.Connection[Any], position: str) -> dict[int, AccountHead]:
    """Every account's line as of `position`, recomputed here from the rows (not by SQL's encodings)."""
    entry_heads = heads_as_of(conn, position)
    at = {"position": position}
    records = {r[0]: account_record_hash(*r) for r in conn.execute(
        f"""select x.id, x.code, x.type, x.normal_side, x.currency, x.holder_id, x.created_at, x.created_xact::text
              from ledger.accounts x where {_SEEN}""", at)}
    statuses = _chains(conn.execute(
        f"""select x.id, x.account_id, x.status, x.reason, x.changed_at, x.created_xact::text
              from ledger.account_status_changes x where {_SEEN} order by x.account_id, x.id""", at),
        status_change_payload)
    changes = _chains(conn.execute(
        f"""select x.id, x.account_id, x.name, x.min_balance, x.max_balance, x.metadata::text, x.changed_at,
                   x.created_xact::text
              from ledger.account_changes x where {_SEEN} order by x.account_id, x.id""", at),
        account_change_payload)
    heads = {}
    for account_id, record in records.items():
        version, head = entry_heads.get(account_id, (0, genesis_hash))
        status_count, status_head = statuses.get(account_id, (0, genesis_hash))
        change_count, change_head = changes.get(account_id, (0, genesis_hash))
        heads[account_id] = AccountHead(account_id, version, head, record, status_count, status_head,
                                        change_count, change_head)
    for account_id in set(entry_heads) - set(records):   # entries of an account the position does not see
        version, head = entry_heads[account_id]
        heads[account_id] = AccountHead(account_id, version, head, genesis_hash, 0, genesis_hash, 0, genesis_hash)
    return heads


def _chains(rows: Iterable[tuple[Any, ...]], payload: Any) -> dict[int, tuple[int, bytes]]:
    """Per account (each row's second field), the count and head of the chain over its rows."""
    chains: dict[int, tuple[int, bytes]] = {}
    for row in rows:
        count, head = chains.get(row[1], (0, genesis_hash))
        chains[row[1]] = (count + 1, chain_hash(head, payload(*row)))
    return chains


def export_checkpoint(conn: psycopg.Connection[Any], checkpoint: Checkpoint) -> dict[str, Any]:
    """A stored checkpoint as the JSON document `ledger-core checkpoint --export` writes."""
    rows = conn.execute(
        """select h.account_id, a.code, h.version, h.hash, h.record_hash, h.status_count, h.status_head,
                  h.change_count, h.change_head
             from ledger.checkpoint_heads h join ledger.accounts a on a.id = h.account_id
            where h.checkpoint_id = %s order by h.account_id""", (checkpoint.id,)).fetchall()
    if not checkpoint.digest.digest.startswith("v2:"):
        raise ValidationError("only checkpoints of digest version 2 can be exported", field="checkpoint")
    return {
        "format": _FILE_FORMAT, "checkpoint": checkpoint.id, "digest": checkpoint.digest.digest,
        "position": checkpoint.digest.position, "taken_at": checkpoint.digest.taken_at.isoformat(),
        "accounts": checkpoint.digest.accounts, "entries": checkpoint.digest.entries,
        "heads": [{"account_id": r[0], "code": r[1], "version": r[2], "hash": bytes(r[3]).hex(),
                   "record_hash": bytes(r[4]).hex(), "status_count": r[5], "status_head": bytes(r[6]).hex(),
                   "change_count": r[7], "change_head": bytes(r[8]).hex()} for r in rows],
    }


def read_checkpoint_file(path: Path) -> CheckpointFile:
    """Read an exported checkpoint; a ValidationError says what is wrong with the file."""
    data = read_bounded(path, checkpoint_file_bytes_max, field="checkpoint_file")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"cannot read the checkpoint file {path}: {exc}", field="checkpoint_file") from None
    except RecursionError:  # arrays nested deeper than Python's stack: no checkpoint file is
        raise ValidationError(f"the checkpoint file {path} is malformed: nested too deep",
                              field="checkpoint_file") from None
    try:
        if document["format"] != _FILE_FORMAT:
            raise ValueError(f"format is not {_FILE_FORMAT!r}")
        digest = str(document["digest"])
        version, position, _ = _parse(digest)
        if version != 2:
            raise ValueError("its digest is not of version 2")
        heads, codes = {}, {}
        for item in document["heads"]:
            head = AccountHead(int(item["account_id"]), int(item["version"]), bytes.fromhex(item["hash"]),
                               bytes.fromhex(item["record_hash"]), int(item["status_count"]),
                               bytes.fromhex(item["status_head"]), int(item["change_count"]),
                               bytes.fromhex(item["change_head"]))
            heads[head.account_id] = head
            codes[head.account_id] = str(item["code"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"the checkpoint file {path} is malformed: {exc}", field="checkpoint_file") from None
    return CheckpointFile(digest, position, heads, codes)


def verify_digest(
    conn: psycopg.Connection[Any], digest: str, *, progress: TextIO | None = sys.stderr,
    checkpoint_file: CheckpointFile | None = None,
) -> DigestCheck:
    """Do the current books extend, unchanged, the books `digest` was taken of?

    A checkpoint file, when given, names the damaged account instead of the stored checkpoints.
    Run it inside one repeatable-read transaction so concurrent postings cannot look like damage.
    """
    version, position, expected = _parse(digest)
    if checkpoint_file is not None and checkpoint_file.digest != digest.strip():
        raise ValidationError(f"the checkpoint file holds digest {checkpoint_file.digest[:80]}, not the one given",
                              field="digest")
    problems = [f"journal: {p}" for p in verify(conn, progress=progress).problems]
    if version == 1:
        heads = heads_as_of(conn, position)
        recomputed = digest_of_heads((a, v, h) for a, (v, h) in heads.items())
    else:
        recomputed = digest_of_accounts(account_heads_as_of(conn, position).values())
    if recomputed != expected:
        problems.append(f"the books as of position {position} give digest {recomputed}, not {expected}: "
                        "entries, transactions or accounts the digest covers were altered, removed or inserted")
        problems += (_locate_v1(conn, digest, position) if version == 1
                     else _locate(conn, digest, position, checkpoint_file))
    return DigestCheck(digest.strip(), position, not problems, f"v{version}:{position}:{recomputed}", problems)


def _locate(conn: psycopg.Connection[Any], digest: str, position: str,
            checkpoint_file: CheckpointFile | None) -> list[str]:
    """Name the first account whose line differs, from the checkpoint file, else a checkpoint of
    the same digest, else the latest checkpoint (recomputed at its own position)."""
    note: list[str] = []
    if checkpoint_file is not None:
        source, stored, codes = "the checkpoint file", checkpoint_file.heads, checkpoint_file.codes
        if digest_of_accounts(stored.values()) != _parse(checkpoint_file.digest)[2]:
            return ["the checkpoint file: its lines do not give its digest (the file was altered)"]
    else:
        row = conn.execute("select id, digest, position from ledger.checkpoints where digest = %s order by id limit 1",
                           (digest.strip(),)).fetchone()
        if row is None:
            row = conn.execute("""select id, digest, position from ledger.checkpoints where digest like 'v2:%'
                                   order by id desc limit 1""").fetchone()
            if row is None:
                return ["no checkpoint is stored, so the account cannot be named; store them with "
                        "`ledger-core checkpoint` (and keep `--export` files)"]
            note = [f"no checkpoint holds this digest; compared with the latest, checkpoint {row[0]}"]
            position = row[2]
        source = f"checkpoint {row[0]}"
        stored = {r[0]: AccountHead(r[0], int(r[1]), bytes(r[2]), bytes(r[3]), int(r[4]), bytes(r[5]), int(r[6]),
                                    bytes(r[7])) for r in conn.execute(
            """select account_id, version, hash, record_hash, status_count, status_head, change_count, change_head
                 from ledger.checkpoint_heads where checkpoint_id = %s""", (row[0],))}
        codes = {}
        if digest_of_accounts(stored.values()) != _parse(row[1])[2]:
            return note + [f"{source}: its stored lines do not give its digest (the checkpoint was altered)"]
    heads = account_heads_as_of(conn, position)
    differing = sorted(a for a in set(stored) | set(heads) if stored.get(a) != heads.get(a))
    if not differing:
        return note + [f"{source} matches the books at its position"]
    first = differing[0]
    code_row = conn.execute("select code from ledger.accounts where id = %s", (first,)).fetchone()
    code = code_row[0] if code_row else f"id {first}"
    if first in codes and codes[first] != code:
        code += f" (code {codes[first]} in {source})"
    return note + [f"account {code}: {_difference(source, stored.get(first), heads.get(first))} "
                   f"({len(differing)} account(s) differ)"]


def _difference(source: str, kept: AccountHead | None, now: AccountHead | None) -> str:
    if kept is None:
        return f"{source} does not have it, the books now show it at that position (inserted)"
    if now is None:
        return f"{source} has it, the books no longer show it at that position (removed or hidden)"
    if (kept.version, kept.hash) != (now.version, now.hash):
        return (f"{source} has its chain head at {_head((kept.version, kept.hash))}, "
                f"the journal now gives {_head((now.version, now.hash))} for that position")
    if kept.record_hash != now.record_hash:
        return (f"its record (code, type, normal side, currency, holder, creation) differs from {source}: "
                f"hash {kept.record_hash.hex()[:16]} there, {now.record_hash.hex()[:16]} now")
    if (kept.status_count, kept.status_head) != (now.status_count, now.status_head):
        return (f"its status history differs from {source}: {kept.status_count} change(s) there, "
                f"{now.status_count} now, heads {kept.status_head.hex()[:16]} and {now.status_head.hex()[:16]}")
    return (f"its name/limit history differs from {source}: {kept.change_count} change(s) there, "
            f"{now.change_count} now, heads {kept.change_head.hex()[:16]} and {now.change_head.hex()[:16]}")


def _locate_v1(conn: psycopg.Connection[Any], digest: str, position: str) -> list[str]:
    """For a version 1 digest: the first account whose entry head differs from a stored
    version 1 checkpoint of the same digest."""
    row = conn.execute("select id, digest from ledger.checkpoints where digest = %s order by id limit 1",
                       (digest.strip(),)).fetchone()
    if row is None:
        return ["no checkpoint holds this version 1 digest, so the account cannot be named"]
    checkpoint_id, checkpoint_digest = row
    stored = {r[0]: (int(r[1]), bytes(r[2])) for r in conn.execute(
        "select account_id, version, hash from ledger.checkpoint_heads where checkpoint_id = %s", (checkpoint_id,))}
    if digest_of_heads((a, v, h) for a, (v, h) in stored.items()) != parse_digest(checkpoint_digest)[1]:
        return [f"checkpoint {checkpoint_id}: its stored heads do not give its digest (the checkpoint was altered)"]
    heads = heads_as_of(conn, position)
    differing = sorted(a for a in set(stored) | set(heads) if stored.get(a) != heads.get(a))
    if not differing:
        return [f"checkpoint {checkpoint_id} matches the journal at its position"]
    first = differing[0]
    code_row = conn.execute("select code from ledger.accounts where id = %s", (first,)).fetchone()
    code = code_row[0] if code_row else f"id {first}"
    return [f"account {code}: checkpoint {checkpoint_id} has its chain head at {_head(stored.get(first))}, "
            f"the journal now gives {_head(heads.get(first))} for that position "
            f"({len(differing)} account(s) differ)"]


def _head(head: tuple[int, bytes] | None) -> str:
    return "no entries" if head is None or head[0] == 0 else f"version {head[0]} hash {head[1].hex()[:16]}"


def verify_digest_command(conninfo: str, digest: str | None, checkpoint_path: Path | None = None) -> int:
    """`ledger-core verify --digest D [--checkpoint-file FILE]`: 0 when the books extend D
    unchanged, 1 naming where not. Given only the file, D is the file's digest."""
    checkpoint_file = read_checkpoint_file(checkpoint_path) if checkpoint_path is not None else None
    if digest is None:
        if checkpoint_file is None:
            raise ValidationError("give a digest, a checkpoint file or both", field="digest")
        digest = checkpoint_file.digest
    _parse(digest)  # a malformed digest is the caller's error before any work
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # One snapshot for the whole check, so concurrent postings cannot look like damage.
        conn.execute("begin isolation level repeatable read read only")
        try:
            check = verify_digest(conn, digest, checkpoint_file=checkpoint_file)
            now = take_digest(conn)
        finally:
            conn.execute("rollback")
    if not check.ok:
        for problem in check.problems:
            print(f"BROKEN: {problem}")
        return 1
    print(f"OK: the journal extends, unchanged, the journal of digest {check.digest} "
          "(entries, transactions, accounts and their histories)")
    print(f"digest now: {now.digest} over {now.accounts:,} accounts, {now.entries:,} entries")
    return 0
