"""A normalised text dump of schema `ledger`, to review and compare what migrations build.

`sql/schema.sql` is this dump of a freshly migrated database; tests/test_schema_dump.py checks it
is current. Regenerate it with

    .venv/bin/python -m ledger.schema_dump --fresh postgresql://postgres@127.0.0.1:5432/postgres > sql/schema.sql

(--fresh builds a scratch database on that server, migrates it, dumps it and drops it; without
it the database at the URL is dumped as it is, e.g. to compare a deployed one with the file).

The text is the same on every supported PostgreSQL (15 to 18): it is built from catalog queries
and formatted here, sorted by name, never from pg_dump or pg_get_functiondef/pg_get_viewdef,
whose layout changes between versions. Function and view bodies are left out (they are in
sql/functions/): a function shows a sha256 of its source text, a view its columns. NOT NULL
shows on the column, never as a constraint (PostgreSQL 18 also records it in pg_constraint).
Owners are left out (they are whoever ran the migrations), and so are the owners' own
privileges.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

__all__ = ["schema_dump"]

_SCHEMA = "ledger"

# Who holds which privileges on an object, its owner left out; grantee 0 is PUBLIC.
_GRANTS = """
    select coalesce(r.rolname, 'PUBLIC'), string_agg(x.privilege_type, ', ' order by x.privilege_type)
      from aclexplode(%(acl)s::aclitem[]) x left join pg_roles r on r.oid = x.grantee
     where x.grantee <> %(owner)s::oid
     group by 1 order by 1"""


def _grants(conn: psycopg.Connection[Any], acl: str, owner: int, *, column: str | None = None) -> list[str]:
    """`grant ... to ...` lines for an aclitem[] text (already defaulted for its kind of object)."""
    rows = conn.execute(_GRANTS, {"acl": acl, "owner": owner}).fetchall()
    if column is None:
        return [f"  grant {privileges} to {grantee}" for grantee, privileges in rows]
    return [f"    grant {privileges} ({column}) to {grantee}" for grantee, privileges in rows]


def _acl_rows(conn: psycopg.Connection[Any], query: str) -> dict[str, list[str]]:
    """Grants per object, from a query of (name, acl text, owner oid)."""
    return {name: _grants(conn, acl, owner) for name, acl, owner in conn.execute(query, {"schema": _SCHEMA})}


def _schema(conn: psycopg.Connection[Any]) -> list[str]:
    acl = _acl_rows(conn, """select nspname, coalesce(nspacl, acldefault('n', nspowner))::text, nspowner
                               from pg_namespace where nspname = %(schema)s""")
    defaults = conn.execute(
        """select d.defaclobjtype, coalesce(r.rolname, 'PUBLIC'),
                  string_agg(x.privilege_type, ', ' order by x.privilege_type)
             from pg_default_acl d join pg_namespace n on n.oid = d.defaclnamespace
             cross join aclexplode(d.defaclacl) x left join pg_roles r on r.oid = x.grantee
            where n.nspname = %(schema)s and x.grantee <> d.defaclrole
            group by 1, 2 order by 1, 2""", {"schema": _SCHEMA}).fetchall()
    kinds = {"r": "tables", "S": "sequences", "f": "functions", "T": "types", "n": "schemas"}
    lines = [f"schema {_SCHEMA}", *acl.get(_SCHEMA, [])]
    lines += [f"  default grant {privileges} on {kinds.get(kind, kind)} to {grantee}" for kind, grantee, privileges in defaults]
    setting = conn.execute("""select array_to_string(array(select unnest(s.setconfig) order by 1), ', ')
                                from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
                               where d.datname = current_database() and s.setrole = 0""").fetchone()
    if setting and setting[0]:
        lines.append(f"  database setting {setting[0]}")
    return lines


def _types(conn: psycopg.Connection[Any]) -> list[str]:
    lines: list[str] = []
    current = None
    for name, attribute, type_name in conn.execute(
            """select t.typname, a.attname, format_type(a.atttypid, a.atttypmod)
                 from pg_type t join pg_namespace n on n.oid = t.typnamespace
                 join pg_class c on c.oid = t.typrelid and c.relkind = 'c'
                 join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                where n.nspname = %(schema)s order by t.typname, a.attnum""", {"schema": _SCHEMA}):
        if name != current:
            lines += ["", f"type {_SCHEMA}.{name}"]
            current = name
        lines.append(f"  attribute {attribute} {type_name}")
    return lines


def _sequences(conn: psycopg.Connection[Any]) -> list[str]:
    acl = _acl_rows(conn, """select c.relname, coalesce(c.relacl, acldefault('s', c.relowner))::text, c.relowner
                               from pg_class c join pg_namespace n on n.oid = c.relnamespace
                              where n.nspname = %(schema)s and c.relkind = 'S'""")
    lines: list[str] = []
    for name, type_name, start, step, owned_by in conn.execute(
            """select c.relname, format_type(s.seqtypid, null), s.seqstart, s.seqincrement,
                      (select n.nspname || '.' || t.relname || '.' || a.attname from pg_depend d
                         join pg_class t on t.oid = d.refobjid
                         join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
                        where d.classid = 'pg_class'::regclass and d.objid = c.oid
                          and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i'))
                 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 join pg_sequence s on s.seqrelid = c.oid
                where n.nspname = %(schema)s order by c.relname""", {"schema": _SCHEMA}):
        owned = f" owned by {owned_by}" if owned_by else ""
        lines += ["", f"sequence {_SCHEMA}.{name} as {type_name} start {start} increment {step}{owned}", *acl[name]]
    return lines


def _columns(conn: psycopg.Connection[Any], relkinds: list[str]) -> dict[str, list[str]]:
    columns: dict[str, list[str]] = {}
    for table, column, type_name, not_null, default, identity, generated, acl, owner in conn.execute(
            """select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                      pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attacl::text,
                      c.relowner
                 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                 left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
                where n.nspname = %(schema)s and c.relkind = any(%(kinds)s)
                order by c.relname, a.attnum""", {"schema": _SCHEMA, "kinds": relkinds}):
        text = f"  column {column} {type_name}"
        text += " not null" if not_null else ""
        text += {"a": " generated always as identity", "d": " generated by default as identity"}.get(identity, "")
        if default is not None:
            text += f" generated always as ({default}) stored" if generated == "s" else f" default {default}"
        columns.setdefault(table, []).append(text)
        if acl:
            columns[table] += _grants(conn, acl, owner, column=column)
    return columns


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    columns = _columns(conn, ["r", "p"])
    constraints: dict[str, list[str]] = {}
    for table, name, definition in conn.execute(
            """select c.relname, k.conname, pg_get_constraintdef(k.oid)
                 from pg_constraint k join pg_class c on c.oid = k.conrelid
                 join pg_namespace n on n.oid = c.relnamespace
                where n.nspname = %(schema)s and k.contype in ('c', 'f', 'p', 'u', 'x')
                order by c.relname, k.conname""", {"schema": _SCHEMA}):
        constraints.setdefault(table, []).append(f"  constraint {name} {definition}")
    indexes: dict[str, list[str]] = {}
    for table, definition in conn.execute(
            """select c.relname, pg_get_indexdef(i.indexrelid)
                 from pg_index i join pg_class c on c.oid = i.indrelid
                 join pg_class x on x.oid = i.indexrelid
                 join pg_namespace n on n.oid = c.relnamespace
                where n.nspname = %(schema)s order by c.relname, x.relname""", {"schema": _SCHEMA}):
        indexes.setdefault(table, []).append("  " + definition.removeprefix("CREATE "))
    triggers: dict[str, list[str]] = {}
    for table, definition in conn.execute(
            """select c.relname, pg_get_triggerdef(t.oid)
                 from pg_trigger t join pg_class c on c.oid = t.tgrelid
                 join pg_namespace n on n.oid = c.relnamespace
                where n.nspname = %(schema)s and not t.tgisinternal
                order by c.relname, t.tgname""", {"schema": _SCHEMA}):
        triggers.setdefault(table, []).append("  " + definition.removeprefix("CREATE "))
    acl = _acl_rows(conn, """select c.relname, coalesce(c.relacl, acldefault('r', c.relowner))::text, c.relowner
                               from pg_class c join pg_namespace n on n.oid = c.relnamespace
                              where n.nspname = %(schema)s and c.relkind in ('r', 'p')""")
    lines: list[str] = []
    for table in sorted(columns):
        lines += ["", f"table {_SCHEMA}.{table}", *columns[table], *constraints.get(table, []),
                  *indexes.get(table, []), *triggers.get(table, []), *acl[table]]
    return lines


def _views(conn: psycopg.Connection[Any]) -> list[str]:
    columns = _columns(conn, ["v", "m"])
    acl = _acl_rows(conn, """select c.relname, coalesce(c.relacl, acldefault('r', c.relowner))::text, c.relowner
                               from pg_class c join pg_namespace n on n.oid = c.relnamespace
                              where n.nspname = %(schema)s and c.relkind in ('v', 'm')""")
    lines: list[str] = []
    for view in sorted(columns):
        lines += ["", f"view {_SCHEMA}.{view}", *columns[view], *acl[view]]
    return lines


def _functions(conn: psycopg.Connection[Any]) -> list[str]:
    lines: list[str] = []
    for row in conn.execute(
            """select p.proname, p.prokind, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
                      l.lanname, p.provolatile, p.proparallel, p.proisstrict, p.prosecdef, p.proleakproof,
                      p.procost, p.prorows, p.proretset,
                      array_to_string(array(select unnest(p.proconfig) order by 1), ', '), p.prosrc,
                      coalesce(p.proacl, acldefault('f', p.proowner))::text, p.proowner,
                      a.aggtransfn::regproc::text, format_type(a.aggtranstype, null)
                 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 join pg_language l on l.oid = p.prolang
                 left join pg_aggregate a on a.aggfnoid = p.oid
                where n.nspname = %(schema)s
                order by p.proname, pg_get_function_identity_arguments(p.oid)""", {"schema": _SCHEMA}):
        (name, kind, arguments, result, language, volatility, parallel, strict, definer, leakproof,
         cost, rows, returns_set, config, source, acl, owner, transition, state_type) = row
        head = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window function"}[kind]
        lines += ["", f"{head} {_SCHEMA}.{name}({arguments})" + (f" returns {result}" if result else "")]
        if kind == "a":
            lines.append(f"  state function {transition}, state type {state_type}")
        else:
            attributes = [f"language {language}",
                          {"i": "immutable", "s": "stable", "v": "volatile"}[volatility],
                          {"s": "parallel safe", "r": "parallel restricted", "u": "parallel unsafe"}[parallel]]
            attributes += ["strict"] if strict else []
            attributes += ["security definer"] if definer else []
            attributes += ["leakproof"] if leakproof else []
            attributes += [f"cost {cost:g}"] + ([f"rows {rows:g}"] if returns_set else [])
            lines.append("  " + ", ".join(attributes))
            if config:
                lines.append(f"  set {config}")
            lines.append(f"  source sha256 {hashlib.sha256(source.encode()).hexdigest()}")
        lines += _grants(conn, acl, owner)
    return lines


def schema_dump(conn: psycopg.Connection[Any]) -> str:
    """The dump of schema `ledger` of the database `conn` is connected to."""
    with conn.transaction():
        # Names outside pg_catalog come out qualified, whatever the caller's search_path.
        conn.execute("select set_config('search_path', 'pg_catalog', true)")
        lines = ["-- Schema `ledger` as a fresh `ledger-core migrate` builds it: generated by",
                 "-- ledger/schema_dump.py (regenerate as its docstring says); never applied.", ""]
        lines += _schema(conn) + _types(conn) + _sequences(conn) + _tables(conn) + _views(conn) + _functions(conn)
    return "\n".join(lines) + "\n"


@contextmanager
def _fresh_database(server_url: str) -> Iterator[str]:
    from ledger.migrate import migrate

    name = f"ledger_schema_dump_{uuid.uuid4().hex[:10]}"
    admin = make_conninfo(server_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        url = make_conninfo(server_url, dbname=name)
        migrate(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledger.schema_dump", description="A normalised text dump of schema ledger.")
    parser.add_argument("database_url")
    parser.add_argument("--fresh", action="store_true",
                        help="dump a scratch database migrated on that server, not the database itself")
    args = parser.parse_args(argv)
    if args.fresh:
        with _fresh_database(args.database_url) as url, psycopg.connect(url) as conn:
            sys.stdout.write(schema_dump(conn))
    else:
        with psycopg.connect(args.database_url) as conn:
            sys.stdout.write(schema_dump(conn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
