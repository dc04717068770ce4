-- requires: raise_error

-- Legs written by the caller (transfers and holds), resolved to accounts and validated.
create or replace function ledger.explicit_legs(p_requests ledger.request[]) returns ledger.leg[]
language plpgsql stable
as $$
declare
    v_raw record;
    v_bad jsonb;
    v_count record;
    v_legs_max int;
begin
    select value::int into v_legs_max from ledger.settings where name = 'legs_per_transaction_max';

    select r.pos, jsonb_array_length(r.legs) as n into v_count from unnest(p_requests) r
     where r.op in ('transfer', 'hold')
       and (jsonb_array_length(r.legs) < 2 or jsonb_array_length(r.legs) > v_legs_max)
     limit 1;
    if found then
        perform ledger.raise_error('LD001', format(
            'request %s has %s legs; a transaction has between 2 and %s', v_count.pos, v_count.n, v_legs_max),
            '{"field": "entries"}');
    end if;

    -- The batch's accounts are fetched once, one probe of the unique index on code each (the
    -- limit keeps the lateral subquery a probe rather than a join over the accounts table); legs
    -- then find theirs with a hash join over that small set.
    with raw_legs as (
        select r.pos, x.leg_no::int as leg_no, case when r.op = 'hold' then 'pending' else 'posted' end as layer,
               x.leg ->> 'account' as code, x.leg ->> 'side' as side, x.leg -> 'amount' as amount,
               case when jsonb_typeof(x.leg -> 'amount') = 'number' then (x.leg -> 'amount')::numeric end as amount_num,
               x.leg ->> 'currency' as currency, x.leg ? 'currency' as has_currency
          from unnest(p_requests) r, jsonb_array_elements(r.legs) with ordinality x(leg, leg_no)
         where r.op in ('transfer', 'hold')),
    known as (
        select c.code, row(a.id, a.currency)::ledger.account_ref as account
          from (select distinct l.code from raw_legs l where l.code is not null) c
          cross join lateral (select a.id, a.currency from ledger.accounts a where a.code = c.code limit 1) a),
    raw as (
        select l.*, k.account from raw_legs l left join known k on k.code = l.code)
    select (jsonb_agg(to_jsonb(raw) order by raw.pos, raw.leg_no) filter (where (raw.account).id is null
                or raw.side is null or raw.side not in ('debit', 'credit')
                or raw.amount_num is null or raw.amount_num <= 0 or raw.amount_num <> trunc(raw.amount_num)
                or raw.amount_num > 9223372036854775807
                or (raw.has_currency and raw.currency is distinct from (raw.account).currency))) -> 0 as bad,
           array_agg(row(raw.pos, raw.leg_no, (raw.account).id, raw.side,
                         case when raw.amount_num between 1 and 9223372036854775807
                                   and raw.amount_num = trunc(raw.amount_num) then raw.amount_num::bigint end,
                         raw.layer)::ledger.leg order by raw.pos, raw.leg_no) as legs
      into v_raw from raw;

    if v_raw.bad is not null then
        v_bad := v_raw.bad;
        if v_bad -> 'account' -> 'id' is null or jsonb_typeof(v_bad -> 'account' -> 'id') = 'null' then
            perform ledger.raise_error('LD004', format('request %s leg %s: no account with code %s',
                                       v_bad ->> 'pos', v_bad ->> 'leg_no', coalesce(v_bad ->> 'code', 'null')),
                                       jsonb_build_object('account', v_bad -> 'code'));
        elsif coalesce(v_bad ->> 'side', '') not in ('debit', 'credit') then
            perform ledger.raise_error('LD001', format('request %s leg %s: side must be debit or credit, got %s',
                                       v_bad ->> 'pos', v_bad ->> 'leg_no', coalesce(v_bad ->> 'side', 'null')),
                                       '{"field": "side"}');
        elsif (v_bad ->> 'has_currency')::boolean
              and (v_bad ->> 'currency') is distinct from (v_bad -> 'account' ->> 'currency') then
            perform ledger.raise_error('LD003', format('request %s leg %s: account %s is in %s, the leg in %s',
                                       v_bad ->> 'pos', v_bad ->> 'leg_no', v_bad ->> 'code',
                                       v_bad -> 'account' ->> 'currency', v_bad ->> 'currency'),
                                       jsonb_build_object('account', v_bad -> 'code',
                                                          'expected', v_bad -> 'account' -> 'currency',
                                                          'got', v_bad -> 'currency'));
        else
            perform ledger.raise_error('LD001', format(
                'request %s leg %s: amount must be a whole number of minor units between 1 and 9223372036854775807, got %s',
                v_bad ->> 'pos', v_bad ->> 'leg_no', v_bad -> 'amount'), '{"field": "amount"}');
        end if;
    end if;
    return coalesce(v_raw.legs, '{}');
end
$$;

revoke all on function ledger.explicit_legs(ledger.request[]) from public;
