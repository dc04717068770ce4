-- requires: chain, distributed

-- Entries with versions, balances after and hash chain; the projection; the open holds.
create or replace function ledger.write_entries(p_requests ledger.request[], p_legs ledger.leg[],
                                     p_accounts ledger.account_state[], p_ids jsonb, p_recorded timestamptz)
returns void
language plpgsql
as $$
declare
    v_rows ledger.entry_row[];
    v_nestloop text := current_setting('enable_nestloop');
    -- The batch's accounts as a plain array: on Citus a condition on it names the shards a
    -- statement goes to (a join with the batch's arrays alone sends it to every shard).
    v_account_ids bigint[] := array(select a.id from unnest(p_accounts) a);
begin
    -- These statements join only the batch's own arrays. A generic plan cannot know their sizes,
    -- and a nested loop over arrays is quadratic: hash joins suit a batch of any size.
    perform set_config('enable_nestloop', 'off', true);
    v_rows := array(
        with ordered as (
            select l.account_id, l.side, l.amount, l.layer, a.currency, a.normal_side,
                   (p_ids ->> r.key)::bigint as transaction_id, r.effective_at,
                   a.version + row_number() over w as account_version,
                   case a.normal_side when 'debit' then a.posted_debits - a.posted_credits
                                      else a.posted_credits - a.posted_debits end
                     + sum(case when l.layer = 'posted' then
                               case when l.side = a.normal_side then l.amount else -l.amount end
                           else 0 end) over w as posted_after,
                   case a.normal_side when 'debit' then a.posted_debits - a.posted_credits
                                                        + a.pending_debits - a.pending_credits
                                      else a.posted_credits - a.posted_debits
                                           + a.pending_credits - a.pending_debits end
                     + sum(case when l.side = a.normal_side then l.amount else -l.amount end) over w as pending_after,
                   a.last_hash
              from unnest(p_legs) l
              join unnest(p_requests) r on r.pos = l.pos
              join unnest(p_accounts) a on a.id = l.account_id
            window w as (partition by l.account_id order by l.pos, l.leg_no
                         rows between unbounded preceding and current row))
        select row(o.account_id, o.account_version, o.transaction_id, o.currency, o.side, o.amount, o.layer,
                   o.effective_at, o.posted_after, o.pending_after,
                   ledger.chain(o.last_hash, ledger.entry_payload_v2(
                       o.account_id, o.account_version, o.transaction_id, o.currency, o.side, o.amount, o.layer,
                       o.effective_at, p_recorded, o.posted_after::bigint, o.pending_after::bigint, th.hash))
                       over (partition by o.account_id order by o.account_version
                             rows between unbounded preceding and current row))::ledger.entry_row
          from ordered o
          -- The batch's transactions by primary key (= any: no join that could scan the table). The
          -- row is passed as ledger.transactions: on Citus the row read is a shard's row type.
          join (select t.id, ledger.transaction_hash(row(t.*)::ledger.transactions) as hash from ledger.transactions t
                 where t.id = any(array(select j.value::bigint from jsonb_each_text(p_ids) j))) th
            on th.id = o.transaction_id
         order by o.account_id, o.account_version);

    insert into ledger.open_holds (account_id, hold_id, amount_out, amount_in, expires_at)
    select l.account_id, (p_ids ->> r.key)::bigint,
           sum(case when l.side <> a.normal_side then l.amount else 0 end),
           sum(case when l.side = a.normal_side then l.amount else 0 end),
           r.expires_at
      from unnest(p_legs) l
      join unnest(p_requests) r on r.pos = l.pos
      join unnest(p_accounts) a on a.id = l.account_id
     where r.op = 'hold'
     group by l.account_id, r.key, r.expires_at;
    perform set_config('enable_nestloop', v_nestloop, true);

    insert into ledger.entries
        (account_id, account_version, transaction_id, currency, side, amount, layer, effective_at,
         recorded_at, posted_balance_after, pending_balance_after, hash)
    select e.account_id, e.account_version, e.transaction_id, e.currency, e.side, e.amount, e.layer,
           e.effective_at, p_recorded, e.posted_after, e.pending_after, e.hash
      from unnest(v_rows) e;

    update ledger.balances b
       set version = s.version,
           posted_debits = b.posted_debits + s.posted_debits,
           posted_credits = b.posted_credits + s.posted_credits,
           pending_debits = b.pending_debits + s.pending_debits,
           pending_credits = b.pending_credits + s.pending_credits,
           last_hash = s.last_hash,
           last_recorded_at = p_recorded
      from (select e.account_id, max(e.account_version) as version,
                   coalesce(sum(e.amount) filter (where e.layer = 'posted' and e.side = 'debit'), 0) as posted_debits,
                   coalesce(sum(e.amount) filter (where e.layer = 'posted' and e.side = 'credit'), 0) as posted_credits,
                   coalesce(sum(e.amount) filter (where e.layer = 'pending' and e.side = 'debit'), 0) as pending_debits,
                   coalesce(sum(e.amount) filter (where e.layer = 'pending' and e.side = 'credit'), 0) as pending_credits,
                   (array_agg(e.hash order by e.account_version desc))[1] as last_hash
              from unnest(v_rows) e group by e.account_id) s
     where b.account_id = s.account_id and b.account_id = any(v_account_ids);

    -- On Citus the commit-time balance check reads the legs on these accounts' shards only
    -- (ledger.legs_written); one server reads them by transaction and keeps no list.
    if ledger.distributed() then
        perform set_config('ledger.entry_accounts', concat_ws(',',
            nullif(current_setting('ledger.entry_accounts', true), ''), array_to_string(v_account_ids, ',')), true);
        perform set_config('ledger.engine_transactions', (coalesce(
            nullif(current_setting('ledger.engine_transactions', true), '')::bigint, 0) + cardinality(p_requests))::text, true);
    end if;

    -- A hold's open rows are on its accounts, which the batch locked to post or void it.
    if exists (select from unnest(p_requests) r where r.op in ('post_hold', 'void_hold')) then
        delete from ledger.open_holds o
         where o.account_id = any(v_account_ids)
           and o.hold_id = any(array(select r.target_id from unnest(p_requests) r
                                      where r.op in ('post_hold', 'void_hold')));
    end if;

    -- Subscribers learn which balances moved: account ids, comma-separated, at most 300 per
    -- notification (a payload holds under 8000 bytes).
    perform pg_notify('ledger_balances', chunk.ids)
       from (select string_agg(a.id::text, ',') as ids
               from (select x.id, (row_number() over (order by x.id) - 1) / 300 as part
                       from unnest(p_accounts) x) a
              group by a.part) chunk;
end
$$;

revoke all on function ledger.write_entries(ledger.request[], ledger.leg[], ledger.account_state[], jsonb, timestamptz) from public;
