"""Where the tables live on a Citus cluster (docs/scale-out.md); nothing at all on one server.

The migrations and definitions are the same SQL on one server and on a cluster. Whether to
distribute is a setting, `LEDGER_DISTRIBUTION`:

  auto   (default) distribute when the database has the citus extension;
  citus  distribute, and fail when the database has no citus extension;
  none   leave every table local, even on a Citus coordinator.

The layout, applied by `migrate` after the migrations and before the definitions (so the
definitions' triggers and functions are made on the distributed tables and reach the shards):

  * the tables kept per account are distributed by `account_id` and colocated with each other
    (ACCOUNT_TABLES): an account's balance, entries, open holds, checkpoint heads, matches and
    balance checkpoints live on one shard, so everything the posting engine (or a sweep of
    balance checkpoints) writes for one account is one shard;
  * every other table of the ledger schema is a reference table, a copy on every node: the
    accounts (their codes are unique across the book, and many tables refer to them), the
    transactions with their unique idempotency keys (a replay check is one probe of the local
    copy), settings, tokens, funds and the product tables;
  * the runner's own records (schema_migrations, schema_definitions) stay on the coordinator.

The roles (docs/design.md, "Roles") are `nologin` on the coordinator, where clients connect. Citus
runs a statement's parts on the workers over connections it opens as the current role, so a
session that switched to `ledger_app` (or an auditor, or the migrator) reads the shards as that
role, and the workers must let it log in: there the three roles are `login` (`admit_roles`).
Citus copies a role's attributes from the coordinator whenever it sends the role to a worker as
the dependency of an object it distributes, which would make them `nologin` there again; so
`migrate` keeps that copying off for its own session (`prepare_session`): the workers' roles are
created by Citus as before, and only their `login` is left as `admit_roles` made it.

Applying it again distributes only what is not yet distributed: a migration that adds a table
gets it distributed by the next `migrate`.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["ACCOUNT_TABLES", "ROLES", "DistributionError", "accounts_by_shard", "admit_roles", "distribute",
           "is_distributed_cluster", "one_connection_per_node", "prepare_session", "wanted"]

# Distributed by account_id, colocated with the first (the balances: one row per account).
ACCOUNT_TABLES = ("balances", "entries", "open_holds", "checkpoint_heads", "reconciliation_matches",
                  "balance_checkpoints", "balance_checkpoint_sweeps")
# The migration runner's own bookkeeping: read by `migrate` alone, never joined.
LOCAL_TABLES = ("schema_migrations", "schema_definitions")
SETTING = "LEDGER_DISTRIBUTION"
# The roles a session switches to (`set role`); each reaches the workers under its own name.
ROLES = ("ledger_app", "ledger_auditor", "ledger_migrator")


class DistributionError(Exception):
    pass


def _has_citus(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("select exists (select from pg_extension where extname = 'citus')").fetchone()
    return bool(row and row[0])


def wanted(conn: psycopg.Connection[Any]) -> bool:
    """Whether this database's tables are to be distributed (the setting, else detection)."""
    mode = os.environ.get(SETTING, "auto").strip().lower() or "auto"
    if mode == "none":
        return False
    if mode == "citus":
        if not _has_citus(conn):
            raise DistributionError(f"{SETTING}=citus, but the database has no citus extension")
        return True
    if mode != "auto":
        raise DistributionError(f"{SETTING} is {mode!r}; it takes auto, citus or none")
    return _has_citus(conn)


def is_distributed_cluster(conn: psycopg.Connection[Any]) -> bool:
    """Whether the ledger's tables are distributed in this database (a Citus coordinator)."""
    if not _has_citus(conn):
        return False
    row = conn.execute("select exists (select from pg_dist_partition "
                       "where logicalrelid = to_regclass('ledger.entries'))").fetchone()
    return bool(row and row[0])


# CASE orders the calls: the setting is made only when the ledger is distributed.
_ONE_CONNECTION_PER_NODE_SQL = """
select case when ledger.distributed()
            then set_config('citus.multi_shard_modify_mode', 'sequential', true) is not null
            else false end"""


def one_connection_per_node(conn: psycopg.Connection[Any]) -> bool:
    """On a cluster, make the open transaction reach each worker over one connection; whether
    the ledger is distributed. Call it first in the transaction.

    Two uses: a transaction that reads the per-account tables across shards and then writes a
    reference table (the per-account tables refer to the reference tables, and Citus then needs
    one connection per node), and a read in one repeatable-read transaction (each worker
    connection has a snapshot of its own; one connection per worker keeps one snapshot there).
    On one server it sets nothing and returns False."""
    row = conn.execute(_ONE_CONNECTION_PER_NODE_SQL).fetchone()
    return bool(row and row[0])


def accounts_by_shard(conn: psycopg.Connection[Any], account_ids: list[int]) -> list[list[int]]:
    """The accounts grouped by the shard of the per-account tables that holds them, each group
    in ascending id order, the groups in the order of their first account. A statement that
    names only one group's accounts (`account_id = any(...)`) is routed to that one shard."""
    rows = conn.execute(
        """select array_agg(a.id order by a.id)
             from unnest(%s::bigint[]) a(id)
            group by get_shard_id_for_distribution_column('ledger.balances', a.id)
            order by min(a.id)""", (account_ids,)).fetchall()
    return [list(r[0]) for r in rows]


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    """The ledger's tables, each after every table it refers to by a foreign key."""
    rows = conn.execute(
        """select c.relname,
                  coalesce(array_agg(distinct r.relname) filter (where r.relname is not null and r.oid <> c.oid),
                           '{}')
             from pg_class c
             join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'ledger'
             left join pg_constraint k on k.conrelid = c.oid and k.contype = 'f'
             left join pg_class r on r.oid = k.confrelid
            where c.relkind in ('r', 'p')
            group by c.relname order by c.relname""").fetchall()
    refers = {str(name): set(targets) for name, targets in rows}
    ordered: list[str] = []
    while refers:
        ready = sorted(name for name, targets in refers.items() if not targets & refers.keys())
        if not ready:
            raise DistributionError(f"tables refer to each other in a cycle: {sorted(refers)}")
        ordered.extend(ready)
        for name in ready:
            del refers[name]
    return ordered


def _placed(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        """select c.relname from pg_dist_partition p
             join pg_class c on c.oid = p.logicalrelid
             join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'ledger'""").fetchall()
    return {str(r[0]) for r in rows}


def distribute(conn: psycopg.Connection[Any]) -> list[str]:
    """Place every table of the ledger schema not yet placed; returns what was placed, as
    `distribute ledger.x by account_id` or `reference ledger.x`. Empty on one server."""
    if not wanted(conn):
        return []
    # Triggers on distributed tables run on the shards; Citus refuses them unless told that the
    # trigger functions are fit for it (ours touch only the rows of their own statement, the
    # account's own shard, or reference tables).
    conn.execute("set citus.enable_unsafe_triggers = on")
    placed = _placed(conn)
    done: list[str] = []
    tables = [t for t in _tables(conn) if t not in LOCAL_TABLES and t not in placed]
    # The migrator owns every table (sql/functions/migrator_owns.sql). Given while the table is
    # still local: Citus refuses to change the owner of a distributed table whose row type a
    # function takes (chain.sql) as a circular dependency.
    if tables and conn.execute("select exists (select from pg_roles where rolname = 'ledger_migrator')").fetchone() == (True,):
        for table in tables:
            conn.execute(sql.SQL("alter table ledger.{} owner to ledger_migrator").format(sql.Identifier(table)))
    # Placing a table resets the privileges of its identity sequence to its owner's (the
    # coordinator's copy, where nextval runs): what the migrations granted is granted again after.
    sequence_grants = _sequence_grants(conn) if tables else []
    # Reference tables first: distributed tables refer to them, never the other way round.
    for table in [t for t in tables if t not in ACCOUNT_TABLES]:
        with conn.transaction():
            conn.execute("select create_reference_table(%s)", (f"ledger.{table}",))
        done.append(f"reference ledger.{table}")
    for table in [t for t in ACCOUNT_TABLES if t in tables]:
        colocate = "none" if table == ACCOUNT_TABLES[0] else f"ledger.{ACCOUNT_TABLES[0]}"
        with conn.transaction():
            conn.execute(sql.SQL("select create_distributed_table(%s, 'account_id', colocate_with => %s)"),
                         (f"ledger.{table}", colocate))
        done.append(f"distribute ledger.{table} by account_id")
    for sequence, privilege, grantee in sequence_grants:
        conn.execute(sql.SQL("grant {} on sequence ledger.{} to {}").format(
            sql.SQL(privilege), sql.Identifier(sequence), sql.Identifier(grantee)))
    return done


def _sequence_grants(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    """(sequence, privilege, role) of every grant on a ledger sequence to a role not its owner."""
    rows = conn.execute(
        """select c.relname, a.privilege_type, pg_get_userbyid(a.grantee)
             from pg_class c cross join lateral aclexplode(c.relacl) a
            where c.relnamespace = 'ledger'::regnamespace and c.relkind = 'S'
              and a.grantee <> c.relowner and a.grantee <> 0
            order by 1, 2, 3""").fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def prepare_session(conn: psycopg.Connection[Any]) -> None:
    """Before `migrate` changes anything on a cluster: Citus leaves the attributes of the roles
    it sends to the workers as they are there (see the module's notes on roles)."""
    if wanted(conn):
        conn.execute("set citus.enable_alter_role_propagation = off")


# Run on each worker: the ledger's roles that may not log in there.
_REFUSED_SQL = """select string_agg(rolname, ',') from pg_roles
                   where not rolcanlogin and rolname in ('ledger_app', 'ledger_auditor', 'ledger_migrator')"""
# Run on each worker. ALTER ROLE on a worker would itself be sent on to the other nodes, the
# coordinator included, were DDL propagation on for it.
_ADMIT_SQL = sql.SQL("set local citus.enable_ddl_propagation = off; alter role {} login")


def _on_workers(conn: psycopg.Connection[Any], command: str, doing: str) -> list[str]:
    """Each worker's answer to `command`; a DistributionError naming the workers that failed."""
    rows = conn.execute("select nodename, nodeport, success, result from run_command_on_workers(%s)",
                        (command,)).fetchall()
    failed = [f"{host}:{port}: {result}" for host, port, success, result in rows if not success]
    if failed:
        raise DistributionError(f"could not {doing} on the workers: {'; '.join(failed)}")
    return [str(result or "") for _, _, _, result in rows]


def admit_roles(conn: psycopg.Connection[Any]) -> list[str]:
    """Let the ledger's roles log in on every worker that refuses them; returns what changed, as
    `login ledger_app on the workers`. Empty on one server, or when every worker admits them."""
    if not is_distributed_cluster(conn):
        return []
    refused = sorted({role for result in _on_workers(conn, _REFUSED_SQL, "read the roles")
                      for role in result.split(",") if role in ROLES})
    for role in refused:
        _on_workers(conn, _ADMIT_SQL.format(sql.Identifier(role)).as_string(conn), f"let {role} log in")
    return [f"login {role} on the workers" for role in refused]


def statements(script: str) -> list[str]:
    """The statements of an SQL script, split at top-level semicolons (outside quotes, dollar
    quotes and comments). Citus sends a DDL statement's text on to the workers, and the text of a
    multi-statement query is the whole script, which the workers refuse; so on a cluster the
    definition files are run one statement at a time."""
    found: list[str] = []
    start = i = 0
    n = len(script)
    while i < n:
        c = script[i]
        if c == "-" and script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in ("'", '"'):
            end = i + 1
            while end < n and script[end] != c:
                end += 1
            i = end + 1
        elif c == "$":
            tag_end = script.find("$", i + 1)
            tag = script[i:tag_end + 1] if tag_end > 0 else ""
            if tag and (tag == "$$" or tag[1:-1].replace("_", "a").isalnum()) and not tag[1].isdigit():
                end = script.find(tag, tag_end + 1)
                i = n if end < 0 else end + len(tag)
            else:
                i += 1
        elif c == ";":
            found.append(script[start:i + 1])
            start = i = i + 1
        else:
            i += 1
    if script[start:].strip():
        found.append(script[start:])
    return [s for s in found if _has_code(s)]


def _has_code(statement: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines())
