-- requires: raise_error

-- Legs derived from the journal: releasing and posting holds, reversing transactions.
create or replace function ledger.derived_legs(p_requests ledger.request[], p_now timestamptz) returns ledger.leg[]
language plpgsql stable
as $$
declare
    v_legs ledger.leg[];
    v_bad record;
    v_targets bigint[];
    v_transactions ledger.transactions[];
    v_resolved bigint[];
    v_reversed bigint[];
    v_entries ledger.entries[];
begin
    -- Most batches are transfers and holds, which derive nothing.
    if not exists (select from unnest(p_requests) r where r.op in ('post_hold', 'void_hold', 'reverse')) then
        return '{}';
    end if;
    -- The targets' rows are read first, each by one statement over the list of target ids
    -- (index probes): the checks and legs below then join the batch's own arrays. On Citus the
    -- entries are distributed, and a subquery per request over them is not planned; a list of
    -- ids is (each shard probes its index).
    v_targets := array(select r.target_id from unnest(p_requests) r
                        where r.op in ('post_hold', 'void_hold', 'reverse') and r.target_id is not null);
    v_transactions := array(select row(t.*)::ledger.transactions from ledger.transactions t
                             where t.id = any(v_targets));
    v_resolved := array(select t.resolves_hold_id from ledger.transactions t where t.resolves_hold_id = any(v_targets));
    v_reversed := array(select t.reverses_id from ledger.transactions t where t.reverses_id = any(v_targets));
    v_entries := array(select row(e.*)::ledger.entries from ledger.entries e where e.transaction_id = any(v_targets)
                        order by e.transaction_id, e.account_id, e.account_version);

    -- The targets must exist, be of the right kind and still be open. Their legs are counted
    -- once per target (a hash join, not a subquery per request over the array).
    with legs as (
        select e.transaction_id, count(*) as legs, max(e.amount) as hold_amount,
               bool_or(e.layer = 'posted') as has_posted
          from unnest(v_entries) e group by e.transaction_id)
    select r.pos, r.op, r.target_id, r.amount, t.id as found_id, t.is_hold, t.expires_at,
           coalesce(g.legs, 0) as legs, g.hold_amount,
           t.id = any(v_resolved) as resolved,
           t.id = any(v_reversed) as reversed,
           coalesce(g.has_posted, false) as has_posted
      into v_bad
      from unnest(p_requests) r
      left join unnest(v_transactions) t on t.id = r.target_id
      left join legs g on g.transaction_id = t.id
     where r.op in ('post_hold', 'void_hold', 'reverse')
       and (t.id is null
            or (r.op <> 'reverse' and not t.is_hold)
            or (r.op <> 'reverse' and t.id = any(v_resolved))
            or (r.op = 'post_hold' and t.expires_at is not null and t.expires_at <= p_now)
            or (r.op = 'post_hold' and r.amount is not null and (
                    r.amount <= 0 or coalesce(g.legs, 0) <> 2 or r.amount > g.hold_amount))
            or (r.op = 'reverse' and t.id = any(v_reversed))
            or (r.op = 'reverse' and not coalesce(g.has_posted, false)))
     order by r.pos
     limit 1;
    if found then
        if v_bad.found_id is null then
            if v_bad.op = 'reverse' then
                perform ledger.raise_error('LD013', format('no transaction %s', v_bad.target_id),
                                           jsonb_build_object('transaction_id', v_bad.target_id));
            end if;
            perform ledger.raise_error('LD010', format('no hold %s', v_bad.target_id),
                                       jsonb_build_object('hold_id', v_bad.target_id));
        elsif v_bad.op <> 'reverse' and not v_bad.is_hold then
            perform ledger.raise_error('LD010', format('transaction %s is not a hold', v_bad.target_id),
                                       jsonb_build_object('hold_id', v_bad.target_id));
        elsif v_bad.op <> 'reverse' and v_bad.resolved then
            perform ledger.raise_error('LD011', format('hold %s was already posted or voided', v_bad.target_id),
                                       jsonb_build_object('hold_id', v_bad.target_id));
        elsif v_bad.op = 'post_hold' and v_bad.expires_at <= p_now then
            perform ledger.raise_error('LD012', format('hold %s expired at %s; it can only be voided',
                                       v_bad.target_id, v_bad.expires_at),
                                       jsonb_build_object('hold_id', v_bad.target_id, 'expires_at', v_bad.expires_at));
        elsif v_bad.op = 'post_hold' then
            perform ledger.raise_error('LD001', case
                when v_bad.amount <= 0 then format('amount to post must be positive, got %s', v_bad.amount)
                when v_bad.legs <> 2 then format('hold %s has %s legs; only a two-leg hold can be posted in part',
                                                 v_bad.target_id, v_bad.legs)
                else format('amount to post %s exceeds hold %s of %s', v_bad.amount, v_bad.target_id,
                            v_bad.hold_amount) end,
                '{"field": "amount"}');
        elsif v_bad.reversed then
            perform ledger.raise_error('LD014', format('transaction %s was already reversed', v_bad.target_id),
                                       jsonb_build_object('transaction_id', v_bad.target_id));
        else
            perform ledger.raise_error('LD001', format(
                'transaction %s has no posted legs to reverse; void a hold instead', v_bad.target_id),
                '{"field": "transactionId"}');
        end if;
    end if;

    select array_agg(l order by l.pos, l.leg_no) into v_legs from (
        -- Release every pending leg of the hold.
        select r.pos, (row_number() over (partition by r.pos order by e.account_id, e.account_version))::int as leg_no,
               e.account_id, case e.side when 'debit' then 'credit' else 'debit' end as side,
               e.amount, 'pending' as layer
          from unnest(p_requests) r
          join unnest(v_entries) e on e.transaction_id = r.target_id
         where r.op in ('post_hold', 'void_hold')
        union all
        -- Post the hold's legs (all of the amount, or the part asked for).
        select r.pos, (1000 + row_number() over (partition by r.pos order by e.account_id, e.account_version))::int,
               e.account_id, e.side, coalesce(r.amount, e.amount), 'posted'
          from unnest(p_requests) r
          join unnest(v_entries) e on e.transaction_id = r.target_id
         where r.op = 'post_hold'
        union all
        -- Reverse the posted legs.
        select r.pos, (row_number() over (partition by r.pos order by e.account_id, e.account_version))::int,
               e.account_id, case e.side when 'debit' then 'credit' else 'debit' end, e.amount, 'posted'
          from unnest(p_requests) r
          join unnest(v_entries) e on e.transaction_id = r.target_id
         where r.op = 'reverse' and e.layer = 'posted'
    ) l;
    return coalesce(v_legs, '{}');
end
$$;

revoke all on function ledger.derived_legs(ledger.request[], timestamptz) from public;
