-- requires: distributed

-- The accounts a batch touches, with balances and holds that have not expired; read after the
-- rows are locked, with index lookups only.
create or replace function ledger.account_states(p_ids bigint[], p_now timestamptz) returns ledger.account_state[]
language plpgsql stable
as $$
begin
    -- Distributed (Citus): joins on the account key, which each shard answers for its own
    -- accounts (Citus plans no lateral subquery over a distributed table).
    if ledger.distributed() then
        return array(
            select row(a.id, a.code, a.normal_side, a.currency, a.status, a.min_balance, a.max_balance,
                       b.version, b.posted_debits, b.posted_credits, b.pending_debits, b.pending_credits,
                       b.last_hash, coalesce(h.out_active, 0), coalesce(h.in_active, 0))::ledger.account_state
              from ledger.balances b
              join ledger.accounts a on a.id = b.account_id
              left join (select o.account_id, sum(o.amount_out) as out_active, sum(o.amount_in) as in_active
                           from ledger.open_holds o
                          where o.account_id = any(p_ids) and (o.expires_at is null or o.expires_at > p_now)
                          group by o.account_id) h on h.account_id = b.account_id
             where b.account_id = any(p_ids)
             order by b.account_id);
    end if;
    return array(
        select row(a.id, a.code, a.normal_side, a.currency, a.status, a.min_balance, a.max_balance,
                   b.version, b.posted_debits, b.posted_credits, b.pending_debits, b.pending_credits,
                   b.last_hash, coalesce(h.out_active, 0), coalesce(h.in_active, 0))::ledger.account_state
          from unnest(p_ids) i(id)
          -- limit 1 (ids are keys) keeps each lateral subquery a probe: flattened into joins,
          -- the planner without statistics hash-joined a scan of every account.
          cross join lateral (select * from ledger.accounts a where a.id = i.id limit 1) a
          cross join lateral (select * from ledger.balances b where b.account_id = i.id limit 1) b
          left join lateral (
              select sum(o.amount_out) as out_active, sum(o.amount_in) as in_active
                from ledger.open_holds o
               where o.account_id = i.id and (o.expires_at is null or o.expires_at > p_now)) h on true);
end
$$;

revoke all on function ledger.account_states(bigint[], timestamptz) from public;
