"""Editing the journal past its guards, as the table owner with triggers (and so foreign keys and
the append-only refusals) off: how the tamper tests damage the books on purpose.

Their edits shift times as `(t at time zone 'UTC' - interval '1 day') at time zone 'UTC'`, not
`t - interval '1 day'`: the same instant for a UTC day, but immutable, and Citus refuses a stable
expression over a column (timestamptz minus interval) in an UPDATE of a distributed table.
"""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = ["triggers_off"]


def triggers_off(conn: psycopg.Connection[Any]) -> None:
    """Switch triggers off for the rest of the open transaction, on every node of a cluster.

    On Citus a statement on a distributed or reference table runs on the workers' shards, where
    a plain SET LOCAL does not reach: propagating SET LOCAL (citus.propagate_set_commands, a
    setting only Citus reads; elsewhere a harmless placeholder) sends the switch along with the
    transaction to every worker it touches."""
    conn.execute("set local citus.propagate_set_commands = 'local'")
    conn.execute("set local session_replication_role = replica")
