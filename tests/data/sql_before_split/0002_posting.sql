-- The posting engine: one call posts a batch of requests in one round trip, set-based.
--
-- A request (one element of the jsonb array) is one of:
--   {"op": "transfer", legs: [...]}           posted legs
--   {"op": "hold", legs: [...], expires_at}   pending legs: reserves funds
--   {"op": "post_hold", target_id, amount?}   releases the hold and posts it, in full or in part
--   {"op": "void_hold", target_id}            releases the hold
--   {"op": "reverse", target_id}              posts the opposite of a transaction's posted legs
-- with key, fp (hex sha256 of the request), kind, description, effective_at, metadata.
-- A leg is {"account": code, "side": "debit"|"credit", "amount": n, "currency"?: "CNY"}.
--
-- The batch is all or nothing. Order of work, which is also the lock order (no deadlocks):
-- replays are answered first; then account rows are locked one statement per account in id
-- order; then transactions are inserted in idempotency-key order; then entries, projection and
-- open holds are written with one statement each.
--
-- Returns [{"id": n, "replayed": bool}] in request order.

create type ledger.request as (
    pos          int,
    key          text,
    fp           bytea,
    kind         text,
    description  text,
    effective_at timestamptz,
    metadata     jsonb,
    op           text,
    expires_at   timestamptz,
    target_id    bigint,
    amount       bigint,
    legs         jsonb
);

create type ledger.account_ref as (id bigint, currency text);
create type ledger.seen as (id bigint, same boolean);

-- An account with its balances and active holds, read once per batch after it is locked.
create type ledger.account_state as (
    id              bigint,
    code            text,
    normal_side     text,
    currency        text,
    status          text,
    min_balance     bigint,
    max_balance     bigint,
    version         bigint,
    posted_debits   bigint,
    posted_credits  bigint,
    pending_debits  bigint,
    pending_credits bigint,
    last_hash       bytea,
    out_active      bigint,
    in_active       bigint
);

-- An entry as computed for a batch, before it is written.
create type ledger.entry_row as (
    account_id      bigint,
    account_version bigint,
    transaction_id  bigint,
    currency        text,
    side            text,
    amount          bigint,
    layer           text,
    effective_at    timestamptz,
    posted_after    bigint,
    pending_after   bigint,
    hash            bytea
);

create type ledger.leg as (
    pos        int,
    leg_no     int,
    account_id bigint,
    side       text,
    amount     bigint,
    layer      text
);

-- Parses and validates the shape of the batch (what can be judged without reading the journal).
create function ledger.parse_requests(p_batch jsonb, p_now timestamptz) returns ledger.request[]
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

    select array_agg(row(
               r.pos, r.req ->> 'key', decode(r.req ->> 'fp', 'hex'), r.req ->> 'kind',
               coalesce(r.req ->> 'description', ''),
               coalesce((r.req ->> 'effective_at')::timestamptz, p_now),
               coalesce(r.req -> 'metadata', '{}'), r.req ->> 'op',
               (r.req ->> 'expires_at')::timestamptz, (r.req ->> 'target_id')::bigint,
               (r.req ->> 'amount')::bigint, r.req -> 'legs')::ledger.request order by r.pos)
      into v_requests
      from jsonb_array_elements(p_batch) with ordinality as r(req, pos);

    select r.pos, r.key, r.op into v_bad from unnest(v_requests) r
     where r.key is null or r.fp is null or r.kind is null
        or r.op is null or r.op not in ('transfer', 'hold', 'post_hold', 'void_hold', 'reverse')
     limit 1;
    if found then
        perform ledger.raise_error('LD001', format(
            'request %s: key, fp, kind and a known op are required', v_bad.pos), '{"field": "op"}');
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

-- Legs written by the caller (transfers and holds), resolved to accounts and validated.
create function ledger.explicit_legs(p_requests ledger.request[]) returns ledger.leg[]
language plpgsql stable
as $$
declare
    v_raw record;
    v_bad jsonb;
    v_legs_max int;
begin
    select value::int into v_legs_max from ledger.settings where name = 'legs_per_transaction_max';

    select r.pos, jsonb_array_length(r.legs) as n into v_bad from unnest(p_requests) r
     where r.op in ('transfer', 'hold')
       and (jsonb_array_length(r.legs) < 2 or jsonb_array_length(r.legs) > v_legs_max)
     limit 1;
    if found then
        perform ledger.raise_error('LD001', format(
            'request %s has %s legs; a transaction has between 2 and %s', v_bad.pos, v_bad.n, v_legs_max),
            '{"field": "entries"}');
    end if;

    -- The batch's accounts are fetched once through the unique index on code; legs then find
    -- theirs with a hash join over that small set, never a scan of the accounts table.
    with raw_legs as (
        select r.pos, x.leg_no::int as leg_no, case when r.op = 'hold' then 'pending' else 'posted' end as layer,
               x.leg ->> 'account' as code, x.leg ->> 'side' as side, x.leg -> 'amount' as amount,
               case when jsonb_typeof(x.leg -> 'amount') = 'number' then (x.leg -> 'amount')::numeric end as amount_num,
               x.leg ->> 'currency' as currency, x.leg ? 'currency' as has_currency
          from unnest(p_requests) r, jsonb_array_elements(r.legs) with ordinality x(leg, leg_no)
         where r.op in ('transfer', 'hold')),
    known as (
        select a.code, row(a.id, a.currency)::ledger.account_ref as account
          from ledger.accounts a
         where a.code = any(array(select distinct l.code from raw_legs l where l.code is not null))),
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

-- Legs derived from the journal: releasing and posting holds, reversing transactions.
create function ledger.derived_legs(p_requests ledger.request[], p_now timestamptz) returns ledger.leg[]
language plpgsql stable
as $$
declare
    v_legs ledger.leg[];
    v_bad record;
begin
    -- The targets must exist, be of the right kind and still be open.
    select r.pos, r.op, r.target_id, r.amount, t.id as found_id, t.is_hold, t.expires_at,
           (select count(*) from ledger.entries e where e.transaction_id = t.id) as legs,
           (select max(e.amount) from ledger.entries e where e.transaction_id = t.id) as hold_amount,
           exists (select 1 from ledger.transactions x where x.resolves_hold_id = t.id) as resolved,
           exists (select 1 from ledger.transactions x where x.reverses_id = t.id) as reversed,
           exists (select 1 from ledger.entries e where e.transaction_id = t.id and e.layer = 'posted') as has_posted
      into v_bad
      from unnest(p_requests) r
      left join ledger.transactions t on t.id = r.target_id
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
          from unnest(p_requests) r join ledger.entries e on e.transaction_id = r.target_id
         where r.op in ('post_hold', 'void_hold')
        union all
        -- Post the hold's legs (all of the amount, or the part asked for).
        select r.pos, (1000 + row_number() over (partition by r.pos order by e.account_id, e.account_version))::int,
               e.account_id, e.side, coalesce(r.amount, e.amount), 'posted'
          from unnest(p_requests) r join ledger.entries e on e.transaction_id = r.target_id
         where r.op = 'post_hold'
        union all
        -- Reverse the posted legs.
        select r.pos, (row_number() over (partition by r.pos order by e.account_id, e.account_version))::int,
               e.account_id, case e.side when 'debit' then 'credit' else 'debit' end, e.amount, 'posted'
          from unnest(p_requests) r join ledger.entries e on e.transaction_id = r.target_id
         where r.op = 'reverse' and e.layer = 'posted'
    ) l;
    return coalesce(v_legs, '{}');
end
$$;

-- Balance per currency and layer, and accounts open, before anything is locked or written.
create function ledger.check_legs(p_requests ledger.request[], p_legs ledger.leg[],
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
end
$$;

create function ledger.post_batch(p_batch jsonb) returns jsonb
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
declare
    v_now timestamptz := clock_timestamp();
    v_recorded timestamptz;
    v_requests ledger.request[];
    v_new ledger.request[];
    v_conflict_pos int;
    v_legs ledger.leg[];
    v_accounts ledger.account_state[];
    v_ids jsonb;
    v_inserted int;
    v_account_id bigint;
    v_bad record;
    v_result jsonb;
    v_nestloop text := current_setting('enable_nestloop');
begin
    v_requests := ledger.parse_requests(p_batch, v_now);

    -- Replays: a key seen before answers with its original transaction, if the request matches.
    with looked as (
        select r, (select row(t.id, t.fingerprint = r.fp)::ledger.seen from ledger.transactions t
                    where t.idempotency_key = r.key) as seen
          from unnest(v_requests) r)
    select array_agg(l.r order by (l.r).pos) filter (where l.seen is null),
           min((l.r).pos) filter (where not (l.seen).same)
      into v_new, v_conflict_pos
      from looked l;
    if v_conflict_pos is not null then
        perform ledger.raise_error('LD008', format(
            'request %s: idempotency key %s was already used for a different request',
            v_conflict_pos, v_requests[v_conflict_pos].key),
            jsonb_build_object('idempotency_key', v_requests[v_conflict_pos].key));
    end if;

    if v_new is not null then
        -- explicit_legs, check_legs and check_limits join only the batch's own arrays: hash joins
        -- (see write_entries). A function-level SET would cost more than these statements.
        perform set_config('enable_nestloop', 'off', true);
        v_legs := ledger.explicit_legs(v_new);
        perform set_config('enable_nestloop', v_nestloop, true);
        v_legs := v_legs || ledger.derived_legs(v_new, v_now);

        -- Lock the balance rows one statement per account in id order: concurrent batches queue
        -- on their first common account and can never wait on each other in a cycle.
        for v_account_id in select distinct l.account_id from unnest(v_legs) l order by 1 loop
            perform 1 from ledger.balances where account_id = v_account_id for update;
        end loop;
        v_recorded := clock_timestamp();
        v_accounts := ledger.account_states(array(select distinct l.account_id from unnest(v_legs) l), v_now);
        perform set_config('enable_nestloop', 'off', true);
        perform ledger.check_legs(v_new, v_legs, v_accounts);
        perform set_config('enable_nestloop', v_nestloop, true);

        -- Key order, so two batches sharing keys wait on each other in one direction only. A key
        -- committed meanwhile by another session skips its row; the caller retries the batch,
        -- which then answers it as a replay.
        with inserted as (
            insert into ledger.transactions
                (idempotency_key, fingerprint, kind, description, effective_at, recorded_at, metadata,
                 is_hold, expires_at, reverses_id, resolves_hold_id, hold_action)
            select r.key, r.fp, r.kind, r.description, r.effective_at, v_recorded, r.metadata,
                   r.op = 'hold', r.expires_at,
                   case when r.op = 'reverse' then r.target_id end,
                   case when r.op in ('post_hold', 'void_hold') then r.target_id end,
                   case r.op when 'post_hold' then 'post' when 'void_hold' then 'void' end
              from unnest(v_new) r order by r.key
            on conflict (idempotency_key) do nothing
            returning id, idempotency_key)
        select jsonb_object_agg(i.idempotency_key, i.id), count(*) into v_ids, v_inserted from inserted i;
        if v_inserted <> cardinality(v_new) then
            raise exception using errcode = '40001',
                message = 'an idempotency key of this batch was committed concurrently; retry the batch';
        end if;

        perform set_config('enable_nestloop', 'off', true);
        perform ledger.check_limits(v_new, v_legs, v_accounts, v_now);
        perform set_config('enable_nestloop', v_nestloop, true);
        perform ledger.write_entries(v_new, v_legs, v_accounts, v_ids, v_recorded);
    end if;

    select jsonb_agg(jsonb_build_object(
               'id', coalesce((v_ids ->> r.key)::bigint,
                              (select t.id from ledger.transactions t where t.idempotency_key = r.key)),
               'replayed', v_ids is null or not (v_ids ? r.key)) order by r.pos)
      into v_result
      from unnest(v_requests) r;
    return v_result;
end
$$;

-- The accounts a batch touches, with balances and holds that have not expired; read after the
-- rows are locked, with index lookups only.
create function ledger.account_states(p_ids bigint[], p_now timestamptz) returns ledger.account_state[]
language plpgsql stable
as $$
begin
    return array(
        select row(a.id, a.code, a.normal_side, a.currency, a.status, a.min_balance, a.max_balance,
                   b.version, b.posted_debits, b.posted_credits, b.pending_debits, b.pending_credits,
                   b.last_hash, coalesce(h.out_active, 0), coalesce(h.in_active, 0))::ledger.account_state
          from unnest(p_ids) i(id)
          cross join lateral (select * from ledger.accounts a where a.id = i.id) a
          cross join lateral (select * from ledger.balances b where b.account_id = i.id) b
          left join lateral (
              select sum(o.amount_out) as out_active, sum(o.amount_in) as in_active
                from ledger.open_holds o
               where o.account_id = i.id and (o.expires_at is null or o.expires_at > p_now)) h on true);
end
$$;

-- Invariant 4: after each request, in batch order, no account's available balance may move
-- past a limit in the direction the request moves it. Holds count: an outgoing hold lowers the
-- available balance, an incoming one counts against the highest allowed balance.
create function ledger.check_limits(p_requests ledger.request[], p_legs ledger.leg[],
                                    p_accounts ledger.account_state[], p_now timestamptz)
returns void
language plpgsql stable
as $$
declare
    v_bad record;
begin
    if not exists (select 1 from unnest(p_accounts) a where a.min_balance is not null or a.max_balance is not null) then
        return;
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
        -- Resolving a hold frees what it reserved, if it still counted (not expired).
        select r.pos, o.account_id, 0, -o.amount_out, -o.amount_in
          from unnest(p_requests) r
          cross join lateral (select * from ledger.open_holds o where o.hold_id = r.target_id) o
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

-- Entries with versions, balances after and hash chain; the projection; the open holds.
create function ledger.write_entries(p_requests ledger.request[], p_legs ledger.leg[],
                                     p_accounts ledger.account_state[], p_ids jsonb, p_recorded timestamptz)
returns void
language plpgsql
as $$
declare
    v_rows ledger.entry_row[];
    v_nestloop text := current_setting('enable_nestloop');
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
                   ledger.chain(o.last_hash, ledger.entry_payload(
                       o.account_id, o.account_version, o.transaction_id, o.currency, o.side, o.amount, o.layer,
                       o.effective_at, p_recorded, o.posted_after::bigint, o.pending_after::bigint))
                       over (partition by o.account_id order by o.account_version
                             rows between unbounded preceding and current row))::ledger.entry_row
          from ordered o
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
           last_hash = s.last_hash
      from (select e.account_id, max(e.account_version) as version,
                   coalesce(sum(e.amount) filter (where e.layer = 'posted' and e.side = 'debit'), 0) as posted_debits,
                   coalesce(sum(e.amount) filter (where e.layer = 'posted' and e.side = 'credit'), 0) as posted_credits,
                   coalesce(sum(e.amount) filter (where e.layer = 'pending' and e.side = 'debit'), 0) as pending_debits,
                   coalesce(sum(e.amount) filter (where e.layer = 'pending' and e.side = 'credit'), 0) as pending_credits,
                   (array_agg(e.hash order by e.account_version desc))[1] as last_hash
              from unnest(v_rows) e group by e.account_id) s
     where b.account_id = s.account_id;

    delete from ledger.open_holds o
     where o.hold_id = any(array(select r.target_id from unnest(p_requests) r
                                  where r.op in ('post_hold', 'void_hold')));

    -- Subscribers learn which balances moved: account ids, comma-separated, at most 300 per
    -- notification (a payload holds under 8000 bytes).
    perform pg_notify('ledger_balances', chunk.ids)
       from (select string_agg(a.id::text, ',') as ids
               from (select x.id, (row_number() over (order by x.id) - 1) / 300 as part
                       from unnest(p_accounts) x) a
              group by a.part) chunk;
end
$$;

revoke all on function ledger.post_batch(jsonb), ledger.parse_requests(jsonb, timestamptz),
    ledger.explicit_legs(ledger.request[]), ledger.derived_legs(ledger.request[], timestamptz),
    ledger.check_legs(ledger.request[], ledger.leg[], ledger.account_state[]),
    ledger.account_states(bigint[], timestamptz),
    ledger.check_limits(ledger.request[], ledger.leg[], ledger.account_state[], timestamptz),
    ledger.write_entries(ledger.request[], ledger.leg[], ledger.account_state[], jsonb, timestamptz) from public;

-- The engine's statements run on arrays of a batch's own rows: a generic plan (index lookups,
-- no scans) suits every batch size and saves planning each statement on every call.
alter function ledger.post_batch(jsonb) set plan_cache_mode = force_generic_plan;
-- Disabling nested loops inflates cost estimates past the JIT thresholds, and compiling would
-- cost far more than running these short statements.
alter function ledger.post_batch(jsonb) set jit = off;
grant execute on function ledger.post_batch(jsonb) to ledger_app;

-- Closing a period waits for postings under way (they hold the lock shared) and is monotonic.
create function ledger.close_period(p_until timestamptz) returns bigint
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
declare
    v_closed_until timestamptz;
    v_id bigint;
begin
    perform pg_advisory_xact_lock(7260001);
    select max(closed_until) into v_closed_until from ledger.period_closes;
    if v_closed_until is not null and p_until <= v_closed_until then
        perform ledger.raise_error('LD009', format('the books are already closed until %s', v_closed_until),
                                   jsonb_build_object('closed_until', v_closed_until));
    end if;
    if p_until > clock_timestamp() then
        perform ledger.raise_error('LD001', format('cannot close a period that has not ended: %s is in the future',
                                   p_until), '{"field": "until"}');
    end if;
    insert into ledger.period_closes (closed_until) values (p_until) returning id into v_id;
    return v_id;
end
$$;

revoke all on function ledger.close_period(timestamptz) from public;
grant execute on function ledger.close_period(timestamptz) to ledger_app;
