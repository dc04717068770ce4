"""Digests an auditor can keep, checkpoints that store them, and the check that the current
journal extends, unchanged, the journal a digest was taken of.

A digest is `v1:<position>:<hex>`:
- position is a PostgreSQL snapshot (`pg_snapshot` text, "xmin:xmax:xip,..."): the journal it
  covers is every transaction whose writing database transaction (`created_xact`) that snapshot
  sees, i.e. every transaction committed when the digest was taken;
- hex is sha256 over the lines "account_id:version:head_hash_hex" (joined by "\\n", in account id
  order) of every account with at least one entry in that journal, where the head is the
  account's entry of highest version in it. Account versions are given out under a row lock held
  to commit, so what a snapshot sees of an account is always a prefix of its chain.

Taking a digest reads the heads from the balances projection (cheap: one row per account).
Checking one recomputes the heads as of its position from the entries themselves, after
`ledger.audit.verify` has recomputed every chain from the entries' contents: so an entry edited
in place breaks its chain, and an entry edited with its chain rewritten changes a head. Either
way the check names where: the chain walk names the account and entry version, and a checkpoint
(`ledger-core checkpoint` stores a digest with its heads, append-only) names the first account
whose head differs.

Positions are the stored created_xact values compared with a snapshot, so they survive a dump
and restore of the database.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

import psycopg

from ledger.audit import verify
from ledger.errors import ValidationError

__all__ = [
    "Digest", "Checkpoint", "DigestCheck", "take_digest", "store_checkpoint", "list_checkpoints",
    "heads_as_of", "digest_of_heads", "parse_digest", "verify_digest", "digest_length_max",
    "note_length_max", "checkpoints_list_max", "verify_digest_command",
]

digest_length_max = 20_000          # the xip list of a snapshot is bounded by max_connections
note_length_max = 200
checkpoints_list_max = 1_000
_DIGEST = re.compile(r"v1:([0-9]+):([0-9]+):([0-9,]*):([0-9a-f]{64})")

# The same lines as digest_of_heads, over a relation `heads(account_id, version, hash)`.
_DIGEST_SQL = """encode(sha256(convert_to(coalesce(string_agg(
        h.account_id || ':' || h.version || ':' || encode(h.hash, 'hex'), E'\\n' order by h.account_id), ''),
        'UTF8')), 'hex')"""


@dataclass(frozen=True)
class Digest:
    digest: str            # v1:<position>:<hex>: keep this
    position: str
    accounts: int          # accounts with a chain
    entries: int           # entries in the journal it covers
    taken_at: datetime


@dataclass(frozen=True)
class Checkpoint:
    id: int
    digest: Digest
    note: str


@dataclass(frozen=True)
class DigestCheck:
    digest: str
    position: str
    ok: bool
    recomputed: str        # the digest the current journal gives for that position
    problems: list[str] = field(default_factory=list)


def digest_of_heads(heads: Iterable[tuple[int, int, bytes]]) -> str:
    """sha256 hex of the head lines: what an auditor recomputes from the public tables."""
    text = "\n".join(f"{a}:{v}:{bytes(h).hex()}" for a, v, h in sorted(heads) if v > 0)
    return hashlib.sha256(text.encode()).hexdigest()


def parse_digest(digest: str) -> tuple[str, str]:
    """(position, hex) of a digest string; a ValidationError names what is wrong."""
    if not isinstance(digest, str) or not 0 < len(digest) <= digest_length_max:
        raise ValidationError(f"a digest is v1:<position>:<sha256 hex> of at most {digest_length_max} characters",
                              field="digest")
    match = _DIGEST.fullmatch(digest.strip())
    if match is None:
        raise ValidationError("a digest looks like v1:<xmin>:<xmax>:<xip,...>:<64 hex digits>, "
                              f"got {digest[:80]!r}", field="digest")
    return f"{match.group(1)}:{match.group(2)}:{match.group(3)}", match.group(4)


_TAKE_SQL = f"""
with heads as (select b.account_id, b.version, b.last_hash as hash from ledger.balances b where b.version > 0)
select pg_current_snapshot()::text, {_DIGEST_SQL}, count(*), coalesce(sum(h.version), 0), clock_timestamp()
  from heads h
"""


def take_digest(conn: psycopg.Connection[Any]) -> Digest:
    """The digest of the journal as committed now (one statement: one snapshot)."""
    row = conn.execute(_TAKE_SQL).fetchone()
    assert row is not None
    return Digest(f"v1:{row[0]}:{row[1]}", row[0], int(row[2]), int(row[3]), row[4])


# One statement, so the digest and the heads stored with it come from the same snapshot.
_STORE_SQL = f"""
with heads as (select b.account_id, b.version, b.last_hash as hash from ledger.balances b where b.version > 0),
taken as (select pg_current_snapshot()::text as position, {_DIGEST_SQL} as hex, count(*) as accounts,
                 coalesce(sum(h.version), 0) as entries
            from heads h),
checkpoint as (
    insert into ledger.checkpoints (digest, position, accounts, entries, note)
    select 'v1:' || t.position || ':' || t.hex, t.position, t.accounts, t.entries, %(note)s from taken t
    returning id, digest, position, accounts, entries, taken_at),
stored as (
    insert into ledger.checkpoint_heads (checkpoint_id, account_id, version, hash)
    select c.id, h.account_id, h.version, h.hash from checkpoint c, heads h)
select id, digest, position, accounts, entries, taken_at from checkpoint
"""


def store_checkpoint(conn: psycopg.Connection[Any], *, note: str = "") -> Checkpoint:
    """Take a digest and store it with its heads (append-only), e.g. daily from cron."""
    if not isinstance(note, str) or len(note) > note_length_max:
        raise ValidationError(f"note must be text of at most {note_length_max} characters", field="note")
    with conn.transaction():
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


def verify_digest(conn: psycopg.Connection[Any], digest: str, *, progress: TextIO | None = sys.stderr) -> DigestCheck:
    """Does the current journal extend, unchanged, the journal `digest` was taken of?

    Run it inside one repeatable-read transaction so concurrent postings cannot look like damage.
    """
    position, expected = parse_digest(digest)
    problems = [f"journal: {p}" for p in verify(conn, progress=progress).problems]
    heads = heads_as_of(conn, position)
    recomputed = digest_of_heads((a, v, h) for a, (v, h) in heads.items())
    if recomputed != expected:
        problems.append(f"the journal as of position {position} gives digest {recomputed}, not {expected}: "
                        "entries the digest covers were altered, removed or inserted")
        problems += _locate(conn, digest, position, heads)
    return DigestCheck(digest.strip(), position, not problems, f"v1:{position}:{recomputed}", problems)


def _locate(conn: psycopg.Connection[Any], digest: str, position: str,
            heads: dict[int, tuple[int, bytes]]) -> list[str]:
    """Name the first account whose head differs, from a checkpoint of the same digest (or else
    the latest checkpoint, recomputed at its own position)."""
    row = conn.execute("select id, digest, position from ledger.checkpoints where digest = %s order by id limit 1",
                       (digest.strip(),)).fetchone()
    note = []
    if row is None:
        row = conn.execute("select id, digest, position from ledger.checkpoints order by id desc limit 1").fetchone()
        if row is None:
            return ["no checkpoint is stored, so the account cannot be named; store them with `ledger-core checkpoint`"]
        note = [f"no checkpoint holds this digest; compared with the latest, checkpoint {row[0]}"]
        heads = heads_as_of(conn, row[2])
    checkpoint_id, checkpoint_digest, _ = row
    stored = {r[0]: (int(r[1]), bytes(r[2])) for r in conn.execute(
        "select account_id, version, hash from ledger.checkpoint_heads where checkpoint_id = %s", (checkpoint_id,))}
    if digest_of_heads((a, v, h) for a, (v, h) in stored.items()) != parse_digest(checkpoint_digest)[1]:
        return note + [f"checkpoint {checkpoint_id}: its stored heads do not give its digest (the checkpoint was altered)"]
    differing = sorted(a for a in set(stored) | set(heads) if stored.get(a) != heads.get(a))
    if not differing:
        return note + [f"checkpoint {checkpoint_id} matches the journal at its position"]
    first = differing[0]
    code_row = conn.execute("select code from ledger.accounts where id = %s", (first,)).fetchone()
    code = code_row[0] if code_row else f"id {first}"
    return note + [f"account {code}: checkpoint {checkpoint_id} has its chain head at {_head(stored.get(first))}, "
                   f"the journal now gives {_head(heads.get(first))} for that position "
                   f"({len(differing)} account(s) differ)"]


def _head(head: tuple[int, bytes] | None) -> str:
    return "no entries" if head is None else f"version {head[0]} hash {head[1].hex()[:16]}"


def verify_digest_command(conninfo: str, digest: str) -> int:
    """`ledger-core verify --digest D`: 0 when the journal extends D unchanged, 1 naming where not."""
    parse_digest(digest)  # a malformed digest is the caller's error before any work
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # One snapshot for the whole check, so concurrent postings cannot look like damage.
        conn.execute("begin isolation level repeatable read read only")
        try:
            check = verify_digest(conn, digest)
            now = take_digest(conn)
        finally:
            conn.execute("rollback")
    if not check.ok:
        for problem in check.problems:
            print(f"BROKEN: {problem}")
        return 1
    print(f"OK: the journal extends, unchanged, the journal of digest {check.digest}")
    print(f"digest now: {now.digest} over {now.accounts:,} chain heads, {now.entries:,} entries")
    return 0
