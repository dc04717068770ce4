-- requires: raise_error

-- Balance per currency and layer, and accounts open, before anything is locked or written.
create or replace function ledger.check_legs(p_requests ledger.request[], p_legs ledger.leg[],
                                  p_accounts ledger.account_state[]) returns void
language plpgsql stable
as $$
declare
    v_bad record;
begin
    select l.pos, a.code, a.status into v_bad
      from unnest(p_legs) l join unnest(p_accounts) a on a.id = l.account_id
      join unnest(p_requests) r on r.pos = l.pos
     where a.status <> 'open' and r.op <> 'void_hold'
     order by l.pos limit 1;
    if found then
        perform ledger.raise_error('LD005', format('request %s: account %s is %s and takes no postings',
                                   v_bad.pos, v_bad.code, v_bad.status),
                                   jsonb_build_object('account', v_bad.code, 'status', v_bad.status));
    end if;

    select g.pos, g.currency, g.layer, g.net into v_bad from (
        select l.pos, a.currency, l.layer,
               sum(case l.side when 'debit' then l.amount else -l.amount end) as net
          from unnest(p_legs) l join unnest(p_accounts) a on a.id = l.account_id
         group by l.pos, a.currency, l.layer) g
     where g.net <> 0
     order by g.pos limit 1;
    if found then
        if (select count(distinct a.currency) from unnest(p_legs) l
              join unnest(p_accounts) a on a.id = l.account_id where l.pos = v_bad.pos) > 1 then
            perform ledger.raise_error('LD003', format(
                'request %s mixes currencies and its %s legs do not balance (debits - credits = %s); '
                'each currency must balance on its own', v_bad.pos, v_bad.currency, v_bad.net),
                jsonb_build_object('currency', v_bad.currency, 'difference', v_bad.net));
        end if;
        perform ledger.raise_error('LD002', format(
            'request %s does not balance: %s debits - credits = %s', v_bad.pos, v_bad.currency, v_bad.net),
            jsonb_build_object('currency', v_bad.currency, 'difference', v_bad.net));
    end if;

    -- A transfer or hold in which every account nets to zero (Dr A 5 / Cr A 5) moves nothing: a
    -- malformed request, not a posting.
    select m.pos into v_bad from (
        select n.pos, bool_or(n.net <> 0) as moves from (
            select l.pos, sum(case l.side when 'debit' then l.amount else -l.amount end) as net
              from unnest(p_legs) l join unnest(p_requests) r on r.pos = l.pos
             where r.op in ('transfer', 'hold')
             group by l.pos, l.account_id) n
         group by n.pos) m
     where not m.moves
     order by m.pos limit 1;
    if found then
        perform ledger.raise_error('LD001', format(
            'request %s moves nothing: every account nets to zero across its legs', v_bad.pos),
            '{"field": "entries"}');
    end if;
end
$$;

revoke all on function ledger.check_legs(ledger.request[], ledger.leg[], ledger.account_state[]) from public;
