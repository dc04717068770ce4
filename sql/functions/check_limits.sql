-- requires: raise_error

-- Invariant 4: after each request, in batch order, no account's available balance may move
-- past a limit in the direction the request moves it. Holds count: an outgoing hold lowers the
-- available balance, an incoming one counts against the highest allowed balance.
create or replace function ledger.check_limits(p_requests ledger.request[], p_legs ledger.leg[],
                                    p_accounts ledger.account_state[], p_now timestamptz)
returns void
language plpgsql stable
as $$
declare
    v_bad record;
    v_holds ledger.open_holds[] := '{}';
begin
    if not exists (select 1 from unnest(p_accounts) a where a.min_balance is not null or a.max_balance is not null) then
        return;
    end if;
    -- The open holds this batch resolves, read by one statement over their ids rather than a
    -- lateral probe per request: on Citus open_holds is distributed, and a lateral subquery
    -- over it is not planned; a list of ids is (each shard probes its index).
    if exists (select from unnest(p_requests) r where r.op in ('post_hold', 'void_hold')) then
        v_holds := array(select o from ledger.open_holds o
                          where o.hold_id = any(array(select r.target_id from unnest(p_requests) r
                                                      where r.op in ('post_hold', 'void_hold'))));
    end if;
    with accounts as (
        select a.id, a.code, a.normal_side, a.min_balance, a.max_balance,
               case a.normal_side when 'debit' then a.posted_debits - a.posted_credits
                                  else a.posted_credits - a.posted_debits end as posted,
               a.out_active, a.in_active
          from unnest(p_accounts) a
         where a.min_balance is not null or a.max_balance is not null),
    -- Per request and account: change of the posted balance and of the active holds.
    moves as (
        select l.pos, l.account_id,
               sum(case when l.layer = 'posted' then
                       case when l.side = acc.normal_side then l.amount else -l.amount end
                   else 0 end) as d_posted,
               sum(case when l.layer = 'pending' and r.op = 'hold' and l.side <> acc.normal_side
                        then l.amount else 0 end) as d_out,
               sum(case when l.layer = 'pending' and r.op = 'hold' and l.side = acc.normal_side
                        then l.amount else 0 end) as d_in
          from unnest(p_legs) l
          join accounts acc on acc.id = l.account_id
          join unnest(p_requests) r on r.pos = l.pos
         group by l.pos, l.account_id
        union all
        -- Resolving a hold frees what it reserved, if it still counted (not expired): the holds'
        -- rows were read first (v_holds), one probe of open_holds_hold_idx per hold.
        select r.pos, o.account_id, 0, -o.amount_out, -o.amount_in
          from unnest(p_requests) r
          join unnest(v_holds) o on o.hold_id = r.target_id
          join accounts acc on acc.id = o.account_id
         where r.op in ('post_hold', 'void_hold') and (o.expires_at is null or o.expires_at > p_now)),
    per_request as (
        select m.pos, m.account_id, sum(m.d_posted) as d_posted, sum(m.d_out) as d_out, sum(m.d_in) as d_in
          from moves m group by m.pos, m.account_id),
    running as (
        select p.pos, acc.code, acc.min_balance, acc.max_balance, p.d_posted, p.d_out, p.d_in,
               acc.posted + sum(p.d_posted) over w as posted_after,
               acc.out_active + sum(p.d_out) over w as out_after,
               acc.in_active + sum(p.d_in) over w as in_after
          from per_request p join accounts acc on acc.id = p.account_id
        window w as (partition by p.account_id order by p.pos rows between unbounded preceding and current row))
    select * into v_bad from running
     where (min_balance is not null and d_posted - d_out < 0 and posted_after - out_after < min_balance)
        or (max_balance is not null and d_posted + d_in > 0 and posted_after + in_after > max_balance)
     order by pos limit 1;
    if found then
        if v_bad.min_balance is not null and v_bad.d_posted - v_bad.d_out < 0
           and v_bad.posted_after - v_bad.out_after < v_bad.min_balance then
            perform ledger.raise_error('LD006', format(
                'request %s: account %s has %s available, %s requested; its balance may not go below %s',
                v_bad.pos, v_bad.code,
                v_bad.posted_after - v_bad.d_posted - (v_bad.out_after - v_bad.d_out) - v_bad.min_balance,
                v_bad.d_out - v_bad.d_posted, v_bad.min_balance),
                jsonb_build_object('account', v_bad.code,
                    'available', v_bad.posted_after - v_bad.d_posted - (v_bad.out_after - v_bad.d_out) - v_bad.min_balance,
                    'requested', v_bad.d_out - v_bad.d_posted, 'min_balance', v_bad.min_balance));
        end if;
        perform ledger.raise_error('LD007', format(
            'request %s: account %s would reach %s; its balance may not exceed %s',
            v_bad.pos, v_bad.code, v_bad.posted_after + v_bad.in_after, v_bad.max_balance),
            jsonb_build_object('account', v_bad.code, 'max_balance', v_bad.max_balance,
                               'would_be', v_bad.posted_after + v_bad.in_after));
    end if;
end
$$;

revoke all on function ledger.check_limits(ledger.request[], ledger.leg[], ledger.account_state[], timestamptz) from public;
