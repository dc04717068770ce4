"""The layout of sql/ (ledger/migrate.py states the rules): every function, procedure, aggregate,
view and trigger is created in exactly one definition file and never in a migration; migrations
never use a definition; a definition file declares every other file it uses."""

from __future__ import annotations

import re
from collections import defaultdict

from ledger.migrate import DEFINITIONS_DIR, definitions, migrations, sql_dir

# `create [or replace] function ledger.x`, `create constraint trigger x`, ... Names in dynamic SQL
# (make_append_only's 'create or replace trigger %I') are not identifiers and do not match.
_CREATES = re.compile(
    r"\bcreate\s+(or\s+replace\s+)?(function|procedure|aggregate|view|trigger|constraint\s+trigger)\s+"
    r"(?:ledger\.)?(\w+)", re.IGNORECASE)
_DROP_TRIGGER = re.compile(r"\bdrop\s+trigger\s+if\s+exists\s+(\w+)\s+on\b", re.IGNORECASE)
_CODE_IN_MIGRATION = re.compile(
    r"\bcreate\s+(or\s+replace\s+)?(function|procedure|aggregate|view|trigger|constraint\s+trigger)\b"
    r"|\balter\s+(function|procedure|aggregate|view|trigger)\b"
    r"|\bon\s+(function|procedure|all\s+functions|all\s+procedures|all\s+routines)\b"
    r"|\bcall\s", re.IGNORECASE)
_LEDGER_NAME = re.compile(r"\bledger\.(\w+)")


def _code(text: str) -> str:
    """The text without its -- comments (no file has -- inside a string literal)."""
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def _definitions_by_file() -> dict[str, str]:
    return {d.name: _code(d.sql) for d in definitions()}


def _defined_in() -> dict[str, list[str]]:
    """Each definable object's name -> the definition files creating it."""
    found: dict[str, list[str]] = defaultdict(list)
    for name, code in _definitions_by_file().items():
        for created in {m.group(3).lower() for m in _CREATES.finditer(code)}:
            found[created].append(name)
    return found


def test_each_object_is_created_in_exactly_one_definition_file():
    found = _defined_in()
    twice = {name: files for name, files in found.items() if len(files) != 1}
    assert not twice, f"created in more than one file of sql/{DEFINITIONS_DIR}: {twice}"
    # The ones this layout was made for, so that a parser gone blind cannot pass.
    for name in ["post_batch", "chain", "chain_step", "entry_payload", "make_append_only", "refuse_change",
                 "factoring_advance_states", "transactions_balanced", "accounts_no_delete", "posted_sum_from"]:
        assert name in found, name
    assert found["post_batch"] == ["post_batch"] and found["chain"] == ["chain"]


def test_no_migration_defines_calls_or_grants_on_code():
    for migration in migrations():
        match = _CODE_IN_MIGRATION.search(_code(migration.sql))
        assert match is None, f"{migration.name}: `{match.group(0)}` belongs in sql/{DEFINITIONS_DIR}/"


def test_no_migration_uses_a_definition():
    """On a fresh database every migration runs before the first definition exists. A migration
    may only drop one (to retire it, or to make way for a change the definitions then heal)."""
    defined = _defined_in()
    for migration in migrations():
        for statement in _code(migration.sql).split(";"):
            if statement.strip().lower().startswith("drop"):
                continue
            used = {m.group(1) for m in _LEDGER_NAME.finditer(statement)} & defined.keys()
            assert not used, f"{migration.name} uses {sorted(used)}, defined in sql/{DEFINITIONS_DIR}/"


def test_every_definition_file_declares_exactly_the_files_it_uses():
    defined = _defined_in()
    for definition in definitions():
        code = _code(definition.sql)
        used = {defined[m.group(1)][0] for m in _LEDGER_NAME.finditer(code) if m.group(1) in defined}
        used.discard(definition.name)
        assert set(definition.requires) == used, (
            f"{definition.file_name}: uses {sorted(used)}, declares `-- requires: {', '.join(definition.requires)}`")


def test_definition_files_can_be_applied_again():
    """Only `create or replace`, except a constraint trigger, which is dropped just before."""
    for name, code in _definitions_by_file().items():
        dropped = {m.group(1) for m in _DROP_TRIGGER.finditer(code)}
        for match in _CREATES.finditer(code):
            kind, created = " ".join(match.group(2).lower().split()), match.group(3)
            if kind == "constraint trigger":
                assert created in dropped, f"{name}.sql: constraint trigger {created} needs `drop trigger if exists` first"
            else:
                assert match.group(1), f"{name}.sql: `{match.group(0)}` is not `create or replace`"


def test_sql_dir_holds_only_migrations_definitions_and_their_companions():
    """Anything else would be silently ignored, or refused as a badly named migration."""
    known = {"functions", "migrations_before_split.txt", "schema.sql"} | {m.name for m in migrations()}
    assert {path.name for path in sql_dir().iterdir()} == known
