"""Where a posting's statements go. On Citus the per-account tables are split into shards; a
posting's writes and its commit-time balance check must reach the shards of its accounts, not
every shard (each shard reached is a round trip, and a write on every worker makes every posting
a two-phase commit over all of them). On one server the engine keeps no list of the accounts it
wrote: the commit check reads the legs by transaction id (docs/scale-out.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg
from book import BANK, WALLET_U1, open_book

from ledger.accounts import Side
from ledger.posting import Hold, Leg, Transfer, VoidHold, post_one

PER_ACCOUNT_TABLES = ("entries", "balances", "open_holds")


def _reached(db_url: str, action: Callable[[psycopg.Connection[Any]], object], *, writes_only: bool = False
             ) -> tuple[dict[str, set[str]], str]:
    """The shards of each per-account table that `action` and its commit sent a statement (or
    only a write) to (Citus logs each remote command), and the accounts the engine listed as
    written."""
    remote: list[str] = []
    with psycopg.connect(db_url) as conn:
        if conn.execute("select ledger.distributed()").fetchone()[0]:
            conn.add_notice_handler(lambda d: remote.append(d.message_primary or ""))
            conn.execute("set citus.log_remote_commands = on")
            conn.execute("set client_min_messages = log")
        action(conn)
        written = conn.execute("select current_setting('ledger.entry_accounts', true)").fetchone()[0]
        conn.commit()  # the balance check runs here
    if writes_only:
        remote = [line for line in remote if re.match(r"issuing (UPDATE|DELETE|INSERT|COPY) ", line)]
    return ({table: {m for line in remote for m in re.findall(rf"ledger\.({table}_\d+)", line)}
             for table in PER_ACCOUNT_TABLES}, written or "")


def _shards(db_url: str, account_ids: list[int]) -> dict[str, set[str]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return {table: {f"{table}_{row[0]}" for row in conn.execute(
            "select get_shard_id_for_distribution_column(%s, x) from unnest(%s::bigint[]) x",
            (f"ledger.{table}", account_ids))} for table in PER_ACCOUNT_TABLES}


def test_a_posting_and_its_commit_check_reach_only_its_accounts(db_url):
    with psycopg.connect(db_url, autocommit=True) as setup:
        ids = open_book(setup)
        distributed = setup.execute("select ledger.distributed()").fetchone()[0]
        hold_id = post_one(setup, Hold("route-hold", "test.hold", [Leg(BANK, Side.DEBIT, 300),
                                                                   Leg(WALLET_U1, Side.CREDIT, 300)])).transaction_id
    accounts = sorted([ids[BANK], ids[WALLET_U1]])
    transfer, written_by_transfer = _reached(db_url, lambda conn: post_one(conn, Transfer(
        "route-transfer", "test.transfer", [Leg(BANK, Side.DEBIT, 500), Leg(WALLET_U1, Side.CREDIT, 500)])))
    void, _ = _reached(db_url, lambda conn: post_one(conn, VoidHold("route-void", hold_id)), writes_only=True)
    if not distributed:
        assert written_by_transfer == "", "one server keeps no list of the accounts a posting wrote"
        assert transfer == void == {table: set() for table in PER_ACCOUNT_TABLES}
        return
    assert sorted(int(x) for x in written_by_transfer.split(",")) == accounts
    allowed = _shards(db_url, accounts)
    # A transfer reads its accounts' open holds (for what is available), writes entries and
    # balances and reads its legs back at commit: all on its accounts' shards.
    for table in PER_ACCOUNT_TABLES:
        assert transfer[table] and transfer[table] <= allowed[table], transfer
    # Voiding a hold writes on its accounts' shards only: entries, balances and the removal of
    # its open rows. (Reading the hold itself, found by its id, still asks every shard.)
    for table in PER_ACCOUNT_TABLES:
        assert void[table] and void[table] <= allowed[table], void
