-- An account's posted entries summed from either end of effective time, stopping after p_limit
-- entries (null: no limit). A statement's opening balance sums the shorter side of its start
-- (ledger/statements.py), so each scan must stop where it is told to.
--
-- The planner settings make that so: without statistics (autovacuum off, a table just loaded)
-- the planner guessed a handful of rows, read every entry of the account into a bitmap, sorted
-- them and then took the first 10,001: 350 ms on a 1,000,000-entry account instead of 5. With
-- bitmap scans and sorts off, the only plan left walks entries_account_effective_idx in order.
-- Set on the function, they hold while it plans and runs, and never leak into the caller's.
--
-- PL/pgSQL rather than SQL: Citus cannot plan a SQL function's statements, whose parameters it
-- sees as unbound; PL/pgSQL hands them over as values and the scan is routed to the account's
-- shard. On one server it also keeps the plan between calls instead of planning every call.

create or replace function ledger.posted_sum_before(p_account_id bigint, p_before timestamptz, p_known_at timestamptz,
                                         p_limit bigint)
returns table (entries bigint, amount numeric)
language plpgsql stable
set enable_bitmapscan = off set enable_sort = off
as $$
begin
    return query
    select count(*), coalesce(sum(case when e.side = a.normal_side then e.amount else -e.amount end), 0)
      from (select e.side, e.amount
              from ledger.entries e
             where e.account_id = p_account_id and e.layer = 'posted' and e.effective_at < p_before
               and e.recorded_at <= p_known_at
             order by e.effective_at, e.id
             limit p_limit) e
      cross join (select a.normal_side from ledger.accounts a where a.id = p_account_id) a;
end
$$;

create or replace function ledger.posted_sum_from(p_account_id bigint, p_from timestamptz, p_known_at timestamptz,
                                       p_limit bigint)
returns table (entries bigint, amount numeric)
language plpgsql stable
set enable_bitmapscan = off set enable_sort = off
as $$
begin
    return query
    select count(*), coalesce(sum(case when e.side = a.normal_side then e.amount else -e.amount end), 0)
      from (select e.side, e.amount
              from ledger.entries e
             where e.account_id = p_account_id and e.layer = 'posted' and e.effective_at >= p_from
               and e.recorded_at <= p_known_at
             order by e.effective_at desc, e.id desc
             limit p_limit) e
      cross join (select a.normal_side from ledger.accounts a where a.id = p_account_id) a;
end
$$;
