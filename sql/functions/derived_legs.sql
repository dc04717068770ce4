-- requires: raise_error

-- Legs derived from the journal: releasing and posting holds, reversing transactions.
create or replace function ledger.derived_legs(p_requests ledger.request[], p_now timestamptz) returns ledger.leg[]
language plpgsql stable
as $$
declare
    v_legs ledger.leg[];
    v_bad record;
begin
    -- Most batches are transfers and holds, which derive nothing.
    if not exists (select from unnest(p_requests) r where r.op in ('post_hold', 'void_hold', 'reverse')) then
        return '{}';
    end if;
    -- The targets must exist, be of the right kind and still be open.
    select r.pos, r.op, r.target_id, r.amount, t.id as found_id, t.is_hold, t.expires_at,
           (select count(*) from ledger.entries e where e.transaction_id = t.id) as legs,
           (select max(e.amount) from ledger.entries e where e.transaction_id = t.id) as hold_amount,
           exists (select 1 from ledger.transactions x where x.resolves_hold_id = t.id) as resolved,
           exists (select 1 from ledger.transactions x where x.reverses_id = t.id) as reversed,
           exists (select 1 from ledger.entries e where e.transaction_id = t.id and e.layer = 'posted') as has_posted
      into v_bad
      from unnest(p_requests) r
      -- One probe per target (limit 1 keeps it one: as a plain join, the planner without
      -- statistics scanned every transaction).
      left join lateral (select * from ledger.transactions t where t.id = r.target_id limit 1) t on true
     where r.op in ('post_hold', 'void_hold', 'reverse')
       and (t.id is null
            or (r.op <> 'reverse' and not t.is_hold)
            or (r.op <> 'reverse' and exists (select 1 from ledger.transactions x where x.resolves_hold_id = t.id))
            or (r.op = 'post_hold' and t.expires_at is not null and t.expires_at <= p_now)
            or (r.op = 'post_hold' and r.amount is not null and (
                    r.amount <= 0
                    or (select count(*) from ledger.entries e where e.transaction_id = t.id) <> 2
                    or r.amount > (select max(e.amount) from ledger.entries e where e.transaction_id = t.id)))
            or (r.op = 'reverse' and exists (select 1 from ledger.transactions x where x.reverses_id = t.id))
            or (r.op = 'reverse' and not exists (select 1 from ledger.entries e
                                                 where e.transaction_id = t.id and e.layer = 'posted')))
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
          cross join lateral (select * from ledger.entries e where e.transaction_id = r.target_id offset 0) e
         where r.op in ('post_hold', 'void_hold')
        union all
        -- Post the hold's legs (all of the amount, or the part asked for).
        select r.pos, (1000 + row_number() over (partition by r.pos order by e.account_id, e.account_version))::int,
               e.account_id, e.side, coalesce(r.amount, e.amount), 'posted'
          from unnest(p_requests) r
          cross join lateral (select * from ledger.entries e where e.transaction_id = r.target_id offset 0) e
         where r.op = 'post_hold'
        union all
        -- Reverse the posted legs.
        select r.pos, (row_number() over (partition by r.pos order by e.account_id, e.account_version))::int,
               e.account_id, case e.side when 'debit' then 'credit' else 'debit' end, e.amount, 'posted'
          from unnest(p_requests) r
          cross join lateral (select * from ledger.entries e where e.transaction_id = r.target_id offset 0) e
         where r.op = 'reverse' and e.layer = 'posted'
    ) l;
    return coalesce(v_legs, '{}');
end
$$;

revoke all on function ledger.derived_legs(ledger.request[], timestamptz) from public;
