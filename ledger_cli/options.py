"""Options every command that opens the database shares: where the database is."""

from __future__ import annotations

import argparse
from pathlib import Path

from ledger.database import database_url, default_data_dir

__all__ = ["add_database_options", "connection_url"]


def add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"embedded PostgreSQL data directory (default {default_data_dir()}); "
                             "ignored when DATABASE_URL is set")


def connection_url(args: argparse.Namespace) -> str:
    return database_url(getattr(args, "data_dir", None))
