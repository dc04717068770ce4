-- requires: raise_error, request_fingerprint

-- The first request of a batch whose times, ids or amounts cannot be read, refused by name.
create or replace function ledger.refuse_unreadable_request(p_batch jsonb) returns void
language plpgsql stable
as $$
declare
    v_req jsonb;
    v_pos bigint;
    v_field text;
begin
    for v_req, v_pos in select * from jsonb_array_elements(p_batch) with ordinality loop
        foreach v_field in array array['effective_at', 'expires_at', 'target_id', 'amount'] loop
            begin
                if v_field in ('effective_at', 'expires_at') then
                    perform (v_req ->> v_field)::timestamptz;
                else
                    perform (v_req ->> v_field)::bigint;
                end if;
            exception when others then
                perform ledger.raise_error('LD001', format('request %s: %s is not readable: %s',
                    v_pos, v_field, sqlerrm), jsonb_build_object('field', case v_field
                        when 'effective_at' then 'effectiveAt' when 'expires_at' then 'expiresAt'
                        when 'target_id' then 'targetId' else 'amount' end));
            end;
        end loop;
    end loop;
    perform ledger.raise_error('LD001', 'a request of the batch is not readable', '{"field": "batch"}');
end
$$;

revoke all on function ledger.refuse_unreadable_request(jsonb) from public;

-- Parses and validates the shape of the batch (what can be judged without reading the journal).
create or replace function ledger.parse_requests(p_batch jsonb, p_now timestamptz) returns ledger.request[]
language plpgsql stable
as $$
declare
    v_requests ledger.request[];
    v_bad record;
    v_batch_size_max int;
    v_hold_lifetime_max interval;
begin
    if jsonb_typeof(p_batch) is distinct from 'array' or jsonb_array_length(p_batch) = 0 then
        perform ledger.raise_error('LD001', 'a batch is a non-empty array of requests',
                                   '{"field": "batch"}');
    end if;
    select value::int into v_batch_size_max from ledger.settings where name = 'batch_size_max';
    if jsonb_array_length(p_batch) > v_batch_size_max then
        perform ledger.raise_error('LD001', format('a batch holds at most %s requests, got %s',
                                   v_batch_size_max, jsonb_array_length(p_batch)), '{"field": "batch"}');
    end if;

    begin
        select array_agg(row(
                   r.pos, r.req ->> 'key', ledger.request_fingerprint(r.req), r.req ->> 'kind',
                   coalesce(r.req ->> 'description', ''),
                   coalesce((r.req ->> 'effective_at')::timestamptz, p_now),
                   coalesce(r.req -> 'metadata', '{}'), r.req ->> 'op',
                   (r.req ->> 'expires_at')::timestamptz, (r.req ->> 'target_id')::bigint,
                   (r.req ->> 'amount')::bigint, r.req -> 'legs')::ledger.request order by r.pos)
          into v_requests
          from jsonb_array_elements(p_batch) with ordinality as r(req, pos);
    exception when invalid_datetime_format or datetime_field_overflow or invalid_text_representation
                    or invalid_parameter_value then
        -- One block for the whole batch (a block per value would cost a subtransaction each);
        -- the slow search for the culprit runs only when there is one.
        perform ledger.refuse_unreadable_request(p_batch);
    end;

    -- The range every time a caller supplies must lie in (the same as the tables' CHECK
    -- constraints, sql/0082_instant_range.sql): the core cannot read a time outside it.
    select r.pos, 'effectiveAt' as field, r.effective_at as value_at into v_bad from unnest(v_requests) r
     where not (r.effective_at >= '1970-01-01 00:00:00+00' and r.effective_at < '9999-01-01 00:00:00+00')
    union all
    select r.pos, 'expiresAt', r.expires_at from unnest(v_requests) r
     where not (r.expires_at >= '1970-01-01 00:00:00+00' and r.expires_at < '9999-01-01 00:00:00+00')
     order by 1 limit 1;
    if found then
        perform ledger.raise_error('LD001', format(
            'request %s: %s must lie in [1970-01-01T00:00:00Z, 9999-01-01T00:00:00Z), got %s',
            v_bad.pos, v_bad.field, v_bad.value_at), jsonb_build_object('field', v_bad.field));
    end if;

    select r.pos, r.key, r.op into v_bad from unnest(v_requests) r
     where r.key is null or r.kind is null
        or r.op is null or r.op not in ('transfer', 'hold', 'post_hold', 'void_hold', 'reverse')
     limit 1;
    if found then
        perform ledger.raise_error('LD001', format(
            'request %s: key, kind and a known op are required', v_bad.pos), '{"field": "op"}');
    end if;

    select r.key into v_bad from unnest(v_requests) r group by r.key having count(*) > 1 limit 1;
    if found then
        perform ledger.raise_error('LD001', format(
            'idempotency key %s appears twice in one batch', v_bad.key), '{"field": "idempotencyKey"}');
    end if;

    select r.pos, r.op into v_bad from unnest(v_requests) r
     where (r.op in ('transfer', 'hold')) <> (jsonb_typeof(r.legs) = 'array')
        or (r.op in ('post_hold', 'void_hold', 'reverse')) <> (r.target_id is not null)
        or (r.expires_at is not null and r.op <> 'hold')
        or (r.amount is not null and r.op <> 'post_hold')
     limit 1;
    if found then
        perform ledger.raise_error('LD001', format(
            'request %s: %s takes %s', v_bad.pos, v_bad.op,
            case when v_bad.op in ('transfer', 'hold') then 'legs (and expires_at for a hold)'
                 else 'a target_id (and an amount to post part of a hold)' end), '{"field": "op"}');
    end if;

    -- A hold takes effect when it is made and lives at most hold_lifetime_max: so a hold open at
    -- any time T was made after T - hold_lifetime_max, which bounds as-of balance queries.
    select value::interval into v_hold_lifetime_max from ledger.settings where name = 'hold_lifetime_max';
    select r.pos, r.expires_at, r.effective_at into v_bad from unnest(v_requests) r
     where r.op = 'hold' and (r.expires_at <= p_now or r.expires_at > p_now + v_hold_lifetime_max
                              or abs(extract(epoch from r.effective_at - p_now)) > 300)
     limit 1;
    if found then
        if abs(extract(epoch from v_bad.effective_at - p_now)) > 300 then
            perform ledger.raise_error('LD001', format(
                'request %s: a hold takes effect when it is made; effective time %s is not now',
                v_bad.pos, v_bad.effective_at), '{"field": "effectiveAt"}');
        end if;
        perform ledger.raise_error('LD001', format(
            'request %s: a hold must expire after now and within %s, got %s',
            v_bad.pos, v_hold_lifetime_max, v_bad.expires_at), '{"field": "expiresAt"}');
    end if;
    return array(select row(r.pos, r.key, r.fp, r.kind, r.description, r.effective_at, r.metadata, r.op,
                            case when r.op = 'hold' then coalesce(r.expires_at, p_now + v_hold_lifetime_max) end,
                            r.target_id, r.amount, r.legs)::ledger.request
                   from unnest(v_requests) r order by r.pos);
end
$$;

revoke all on function ledger.parse_requests(jsonb, timestamptz) from public;
