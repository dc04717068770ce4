"""Balances on an account's normal side: posted, pending and available; now, as of an effective
time, and as known at a recorded time.

- posted: the sum of posted legs.
- pending: posted plus the holds that have neither resolved nor expired, as if they were posted.
- available: posted minus outgoing holds that have not expired (as of the effective time asked
  for; as known at a recorded time alone, at that time, so known at now is the balance now).

An expired hold that nobody voided yet leaves pending as it leaves available: it reserves nothing
(it can only be voided). Its pending legs stay in the journal until then, so the entries'
pending_balance_after (the pending layer as written) can differ from pending here.

Now is read from the projection (`ledger.balances`, `ledger.open_holds`). "As known at R" starts
from the last entry recorded by R, which carries the balances after it; "as of T" then takes
away what is effective after T. So the cost grows with what happened after T, never with the
account's whole history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import psycopg

from ledger.accounts import ACCOUNT_COLUMNS, Account, like_category
from ledger.balance_checkpoints import recorded_since_max
from ledger.errors import AccountNotFound, ValidationError
from ledger.instants import check_instant
from ledger.money import Money

__all__ = ["Balance", "balance", "balances_now", "accounts_with_balances_by_code", "rollup"]


@dataclass(frozen=True)
class Balance:
    account_id: int
    currency: str
    posted: int
    pending: int
    available: int
    version: int

    def money(self) -> tuple[Money, Money, Money]:
        return (Money(self.posted, self.currency), Money(self.pending, self.currency),
                Money(self.available, self.currency))


# An account's balance now: posted, and the holds still open, from the balances and open holds.
_NOW_COLUMNS_FROM = """
       case a.normal_side when 'debit' then b.posted_debits - b.posted_credits
                          else b.posted_credits - b.posted_debits end as posted,
       coalesce(h.in_active, 0)::bigint as in_active, coalesce(h.out_active, 0)::bigint as out_active,
       b.version
  from ledger.accounts a join ledger.balances b on b.account_id = a.id
  left join lateral (select sum(o.amount_in) as in_active, sum(o.amount_out) as out_active from ledger.open_holds o
                      where o.account_id = b.account_id
                        and (o.expires_at is null or o.expires_at > clock_timestamp())) h on true
"""
_NOW_SQL = "select a.id, a.currency," + _NOW_COLUMNS_FROM + " where a.id = any(%(ids)s)\n"

_ACCOUNT_FIELDS = len(ACCOUNT_COLUMNS.split(","))
# Rows are read by position into Account: its fields must be the columns, in their order.
assert [f.name for f in fields(Account)] == [c.strip() for c in ACCOUNT_COLUMNS.split(",")]
# The accounts and their balances now, by code, in one statement (one snapshot): what an
# `account(code) { balance }` request reads, for many requests at once.
_NOW_BY_CODE_SQL = ("select " + ", ".join(f"a.{column.strip()}" for column in ACCOUNT_COLUMNS.split(",")) + ","
                    + _NOW_COLUMNS_FROM + " where a.code = any(%(codes)s)\n")

_AS_OF_SQL = """
with acc as (select a.id, a.currency, a.normal_side from ledger.accounts a where a.id = %(id)s),
known as (
    select e.posted_balance_after as posted, e.account_version as version
      from ledger.entries e
     where e.account_id = %(id)s and e.account_version = ledger.version_known_at(%(id)s, %(known_at)s)),
later as (
    select coalesce(sum(case when e.side = acc.normal_side then e.amount else -e.amount end), 0)::bigint as posted
      from ledger.entries e cross join acc
     where e.account_id = %(id)s and e.layer = 'posted' and e.effective_at > %(as_of)s
       and e.recorded_at <= %(known_at)s),
-- The holds open at as_of: made by then (so after as_of - hold_lifetime_max), neither expired nor
-- resolved by then.
holds as (
    select coalesce(sum(e.amount) filter (where e.side = acc.normal_side), 0)::bigint as in_open,
           coalesce(sum(e.amount) filter (where e.side <> acc.normal_side), 0)::bigint as out_open
      from ledger.entries e
      cross join acc
      join ledger.transactions h on h.id = e.transaction_id
     where e.account_id = %(id)s and e.layer = 'pending' and h.is_hold
       and e.effective_at > %(holds_at)s - (select value::interval from ledger.settings where name = 'hold_lifetime_max')
       and e.effective_at <= %(as_of)s and e.recorded_at <= %(known_at)s
       and (h.expires_at is null or h.expires_at > %(holds_at)s)
       and not exists (select 1 from ledger.transactions x
                        where x.resolves_hold_id = h.id and x.effective_at <= %(as_of)s
                          and x.recorded_at <= %(known_at)s))
select acc.id, acc.currency,
       -- From the balance checkpoints when a recent enough sweep allows (ledger/balance_checkpoints.py).
       coalesce(case when %(as_of_given)s then ledger.posted_before(%(id)s, %(as_of)s::timestamptz + interval '1 microsecond',
                                                                    %(known_at)s, %(since_max)s) end,
                coalesce(known.posted, 0) - (select later.posted from later)) as posted,
       holds.in_open, holds.out_open, coalesce(known.version, 0)
  from acc left join known on true cross join holds
"""


def balances_now(conn: psycopg.Connection[Any], account_ids: Sequence[int]) -> dict[int, Balance]:
    """Current balances of many accounts in one query (for pages and data loaders)."""
    rows = conn.execute(_NOW_SQL, {"ids": list(account_ids)}).fetchall()
    return {row[0]: _balance(row) for row in rows}


def accounts_with_balances_by_code(
    conn: psycopg.Connection[Any], codes: Sequence[str],
) -> dict[str, tuple[Account, Balance]]:
    """Accounts by code with their current balances, read in one statement (codes with no
    account are left out)."""
    found: dict[str, tuple[Account, Balance]] = {}
    for row in conn.execute(_NOW_BY_CODE_SQL, {"codes": list(codes)}).fetchall():
        account = Account(*row[:_ACCOUNT_FIELDS])
        found[account.code] = (account, _balance((account.id, account.currency, *row[_ACCOUNT_FIELDS:])))
    return found


def balance(
    conn: psycopg.Connection[Any], account_id: int, *, as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> Balance:
    if as_of is None and known_at is None:
        found = balances_now(conn, [account_id])
        if account_id not in found:
            raise AccountNotFound(f"no account with id {account_id}", account=account_id)
        return found[account_id]
    for name, value in (("asOf", as_of), ("knownAt", known_at)):
        if value is not None:
            check_instant(value, name)
    # Holds are judged open or expired at the effective time asked for; with none, at the
    # recorded time, as the balance now judges them at the clock.
    row = conn.execute(
        _AS_OF_SQL, {"id": account_id, "as_of": as_of or _INFINITY, "known_at": known_at or _INFINITY,
                     "holds_at": as_of or known_at, "as_of_given": as_of is not None,
                     "since_max": recorded_since_max},
        prepare=False,  # the best plan depends on the times given; a cached generic one scans
    ).fetchone()
    if row is None:
        raise AccountNotFound(f"no account with id {account_id}", account=account_id)
    return _balance(row)


def _balance(row: Sequence[Any]) -> Balance:
    """From (id, currency, posted, holds in, holds out, version): only live holds count."""
    account_id, currency, posted, in_open, out_open, version = row
    return Balance(account_id, currency, posted, posted + in_open - out_open, posted - out_open, version)


_INFINITY = "infinity"

# What was posted after an as-of time, per account; joined only when a time is given (a join
# whose every row a null parameter filters out is not planned on Citus, docs/scale-out.md).
LATER_POSTED_SQL = """left join lateral (
      select sum(case when e.side = 'debit' then e.amount else -e.amount end) as net
        from ledger.entries e
       where e.account_id = b.account_id
         and e.effective_at > %(as_of)s and e.layer = 'posted') later on true"""
NOTHING_LATER_SQL = "left join (select null::bigint as net) later on true"

_ROLLUP_SQL = """
with acc as (
    select a.id, a.currency,
           -- each account counts on its type's side, so a contra account nets its category
           case when a.type in ('asset', 'expense') then 1 else -1 end as type_sign
      from ledger.accounts a
     where a.code = %(prefix)s or a.code like %(like)s)
select acc.currency,
       sum(acc.type_sign * (b.posted_debits - b.posted_credits
           - coalesce(later.net, 0)))::bigint as amount
  from acc join ledger.balances b on b.account_id = acc.id
  {later}
 group by acc.currency
 order by acc.currency
"""
_ROLLUP_AS_OF_SQL = _ROLLUP_SQL.replace("{later}", LATER_POSTED_SQL)
_ROLLUP_NOW_SQL = _ROLLUP_SQL.replace("{later}", NOTHING_LATER_SQL)



def rollup(conn: psycopg.Connection[Any], prefix: str, *, as_of: datetime | None = None) -> list[Money]:
    """Posted balance of every account under a code prefix (a category), per currency."""
    if not isinstance(prefix, str) or not prefix:
        raise ValidationError("prefix must be a code prefix such as assets:loans", field="prefix")
    if as_of is not None:
        check_instant(as_of, "asOf")
    rows = conn.execute(_ROLLUP_NOW_SQL if as_of is None else _ROLLUP_AS_OF_SQL,
                        {"prefix": prefix, "like": like_category(prefix), "as_of": as_of},
                        prepare=False).fetchall()
    return [Money(int(row[1]), row[0]) for row in rows]
