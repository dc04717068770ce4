"""`ledger-core`: the command line. Each area registers its own subcommands (see COMMAND_MODULES)."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence
from pathlib import Path

import psycopg

from ledger.errors import DatabaseUnavailable, LedgerError, translate
from ledger.migrate import MigrationError
from ledger.settings import masked
from ledger_cli.config_commands import settings_in_force, use_config_file

__all__ = ["main", "build_parser"]

# Modules with a `register(subparsers)` function adding their commands.
COMMAND_MODULES = [
    "ledger_cli.config_commands",
    "ledger_cli.core_commands",
    "ledger_cli.account_commands",
    "ledger_cli.audit_commands",
    "ledger_cli.serve_commands",
    "ledger_cli.fund_commands",
    "ledger_cli.credit_commands",
    "ledger_cli.factoring_commands",
    "ledger_cli.webhook_commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger-core", description="Append-only double-entry ledger")
    parser.add_argument("--version", action="version", version=f"%(prog)s {importlib.metadata.version('ledger-core')}")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="settings file (TOML), else LEDGER_CONFIG_FILE; see `ledger-core config`")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.config is not None:
            use_config_file(args.config)
        settings_in_force()  # a setting that is not valid stops every command here, named
        return int(args.run(args) or 0)
    except LedgerError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        print(f"error: {_database_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _database_error(exc: psycopg.Error) -> str:
    """One line for a database error no command turned into a LedgerError: the ledger's own
    meaning when it has one; for a server that cannot be reached, the driver's reason too (the
    operator runs this with the database's credentials, so host and user names are theirs)."""
    # The driver's text runs over several lines, and may quote the connection string.
    reason = masked("database_url", " ".join(str(exc).split())[:300])
    translated = translate(exc)
    if isinstance(translated, DatabaseUnavailable):
        return f"{translated.code}: cannot reach the database or the connection was lost: {reason}"
    if translated is not None:
        return f"{translated.code}: {translated.message}"
    return f"DATABASE_ERROR: {reason}"


if __name__ == "__main__":
    sys.exit(main())
