-- requires: raise_error, distributed, set_lock_timeout, parse_requests, explicit_legs, derived_legs, account_states, check_legs, check_limits, write_entries

-- The posting engine: one call posts a batch of requests in one round trip, set-based.
--
-- A request (one element of the jsonb array) is one of:
--   {"op": "transfer", legs: [...]}           posted legs
--   {"op": "hold", legs: [...], expires_at}   pending legs: reserves funds
--   {"op": "post_hold", target_id, amount?}   releases the hold and posts it, in full or in part
--   {"op": "void_hold", target_id}            releases the hold
--   {"op": "reverse", target_id}              posts the opposite of a transaction's posted legs
-- with key, kind, description, effective_at, metadata. The engine fingerprints each request
-- itself (parse_requests: sha256 of its jsonb text without the key).
-- A leg is {"account": code, "side": "debit"|"credit", "amount": n, "currency"?: "CNY"}.
--
-- The batch is all or nothing. Order of work, which is also the lock order (no deadlocks):
-- replays are answered first (a key refused before answers its refusal again: ledger.refusals,
-- recorded by ledger.record_refusal); then account rows are locked by one statement, in id order;
-- then transactions are inserted in idempotency-key order; then entries, projection and open
-- holds are written with one statement each.
--
-- Returns [{"id": n, "replayed": bool}] in request order.
--
-- The engine's statements run on arrays of a batch's own rows: a generic plan (index lookups,
-- no scans) suits every batch size and saves planning each statement on every call. JIT off:
-- disabling nested loops inflates cost estimates past the JIT thresholds, and compiling would
-- cost far more than running these short statements.
create or replace function ledger.post_batch(p_batch jsonb) returns jsonb
language plpgsql security definer set search_path = pg_catalog, ledger
set plan_cache_mode = force_generic_plan set jit = off
as $$
declare
    v_now timestamptz := clock_timestamp();
    v_recorded timestamptz;
    v_latest_recorded timestamptz;
    v_requests ledger.request[];
    v_new ledger.request[];
    v_conflict_pos int;
    v_legs ledger.leg[];
    v_accounts ledger.account_state[];
    v_ids jsonb;
    v_inserted int;
    v_bad record;
    v_result jsonb;
    v_nestloop text := current_setting('enable_nestloop');
    v_lock_timeout text := current_setting('lock_timeout');
    v_account_id bigint;
begin
    -- A caller that set no lock timeout (a script, a job) still waits only a bounded time on a
    -- row another transaction holds; past it the batch is refused (LockNotAvailable), which the
    -- caller sees as a retryable LOCK_TIMEOUT. A caller's own setting (the API sets one) stands.
    if v_lock_timeout = '0' then
        perform set_config('lock_timeout', (select value from ledger.settings where name = 'post_lock_timeout'), true);
    end if;
    -- On Citus a statement is planned for the shards its values name: a generic plan would
    -- leave it no values to route by.
    if ledger.distributed() then
        perform set_config('plan_cache_mode', 'force_custom_plan', true);
        -- The per-account tables refer to the reference tables (accounts, transactions): Citus
        -- then needs one connection per node for the whole transaction.
        perform set_config('citus.multi_shard_modify_mode', 'sequential', true);
        -- The balance rows are locked, and waited for, on the workers: the lock timeout (the
        -- caller's, or the one just set) must hold there too.
        perform ledger.set_lock_timeout(current_setting('lock_timeout'));
    end if;
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

    -- A key refused before (ledger.refusals) answers that refusal again, if the request matches:
    -- the refusal is final for the key, as a posting is.
    select r.pos, r.key, r.fp = f.fingerprint as same, f.sqlstate, f.message, f.details, f.refused_at
      into v_bad
      from unnest(v_new) r join ledger.refusals f on f.idempotency_key = r.key
     order by r.pos limit 1;
    if found then
        if not v_bad.same then
            perform ledger.raise_error('LD008', format(
                'request %s: idempotency key %s was already used for a different request', v_bad.pos, v_bad.key),
                jsonb_build_object('idempotency_key', v_bad.key));
        end if;
        perform ledger.raise_error(v_bad.sqlstate, format('request %s: %s', v_bad.pos, v_bad.message),
            v_bad.details || jsonb_build_object('replayed', true, 'refused_at', v_bad.refused_at));
    end if;

    if v_new is not null then
        -- explicit_legs, check_legs and check_limits join only the batch's own arrays: hash joins
        -- (see write_entries). A function-level SET would cost more than these statements.
        perform set_config('enable_nestloop', 'off', true);
        v_legs := ledger.explicit_legs(v_new);
        perform set_config('enable_nestloop', v_nestloop, true);
        v_legs := v_legs || ledger.derived_legs(v_new, v_now);

        -- Lock the balance rows in account id order, one index probe each: concurrent
        -- batches queue on their first common account and never wait on each other in a cycle.
        -- The states are read afterwards (account_states), by a statement whose snapshot sees
        -- what the batches that held these locks committed.
        -- Distributed (Citus), one statement per account in the same order: one statement may
        -- lock rows of one shard only.
        if ledger.distributed() then
            for v_account_id in select distinct l.account_id from unnest(v_legs) l order by 1 loop
                select greatest(v_latest_recorded, b.last_recorded_at) into v_latest_recorded
                  from ledger.balances b where b.account_id = v_account_id for update;
            end loop;
        else
            select max(b.last_recorded_at) into v_latest_recorded
              from (select distinct l.account_id from unnest(v_legs) l order by 1) i
              cross join lateral (select b.last_recorded_at from ledger.balances b
                                   where b.account_id = i.account_id for update) b;
        end if;
        -- recorded_at never falls as an account's version rises, even if the clock is set back:
        -- "what was known at R" relies on it (ledger.version_known_at).
        v_recorded := greatest(clock_timestamp(), v_latest_recorded);
        v_accounts := ledger.account_states(array(select distinct l.account_id from unnest(v_legs) l), v_now);
        perform set_config('enable_nestloop', 'off', true);
        perform ledger.check_legs(v_new, v_legs, v_accounts);
        perform set_config('enable_nestloop', v_nestloop, true);

        -- The insert's trigger (check_transaction_time) refuses an effective time in a closed
        -- period or too far ahead for the statement as a whole; checked here first, the refusal
        -- names the request, so a caller posting many requests knows which one it was. Here,
        -- where the trigger would fire: the refusals keep their order (after the legs' checks,
        -- before the limits).
        select r.pos, r.effective_at, c.closed_until into v_bad
          from unnest(v_new) r
          cross join (select max(p.closed_until) as closed_until from ledger.period_closes p) c
         where r.effective_at <= c.closed_until
         order by r.pos limit 1;
        if found then
            perform ledger.raise_error('LD009', format(
                'request %s: effective time %s lies in a closed period (closed until %s)',
                v_bad.pos, v_bad.effective_at, v_bad.closed_until),
                jsonb_build_object('effective_at', v_bad.effective_at, 'closed_until', v_bad.closed_until));
        end if;
        select r.pos, r.effective_at, s.value into v_bad
          from unnest(v_new) r cross join ledger.settings s
         where s.name = 'future_effective_max' and r.effective_at > clock_timestamp() + s.value::interval
         order by r.pos limit 1;
        if found then
            perform ledger.raise_error('LD001', format('request %s: effective time %s is more than %s in the future',
                v_bad.pos, v_bad.effective_at, v_bad.value), jsonb_build_object('field', 'effectiveAt'));
        end if;

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
    -- The rest of the caller's transaction is its own (on Citus, on the workers too).
    if ledger.distributed() then
        perform ledger.set_lock_timeout(v_lock_timeout);
    else
        perform set_config('lock_timeout', v_lock_timeout, true);
    end if;
    return v_result;
end
$$;

revoke all on function ledger.post_batch(jsonb) from public;
grant execute on function ledger.post_batch(jsonb) to ledger_app;
