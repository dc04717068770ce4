-- Less work per row in the posting engine (its functions are in sql/functions/): balances keeps
-- last_recorded_at, the newest entry's recorded_at, which write_entries maintains and post_batch
-- never records below; and entries_account_recorded_idx is dropped. recorded_at rises with the
-- account version (the engine takes it under the account's lock), so ledger.version_known_at
-- finds "the last entry recorded by R" by a binary search over the primary key. One index less
-- on every posted leg, and no index on recorded_at for the planner to prefer, without
-- statistics, over the effective-time index (an as-of balance on a 1,000,000-entry account took
-- 138 ms that way).

-- The recorded time of each account's newest entry: the engine never records an entry before it
-- (if the clock is set back, it records at this time again), so recorded_at rises with the
-- version. Backfilled from the entries.
alter table ledger.balances add column last_recorded_at timestamptz;
update ledger.balances b set last_recorded_at = e.recorded_at
  from ledger.entries e
 where e.account_id = b.account_id and e.account_version = b.version;

drop index ledger.entries_account_recorded_idx;

-- No JIT in this database. Its queries run for milliseconds; compiling takes tens to hundreds.
-- Without statistics (autovacuum off, or a table just loaded) the planner's row guesses pass
-- jit_above_cost easily: reading the entries of 21 transactions took 27 ms and the state of 21
-- holds 160 ms, all of it compiling. Takes effect for new sessions.
do $$
begin
    execute format('alter database %I set jit = off', current_database());
end
$$;
