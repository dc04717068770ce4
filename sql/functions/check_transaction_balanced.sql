-- requires: raise_error, on_worker_node, distributed

-- The legs of the p_count transactions this database transaction wrote, ids p_from..p_upto.
--   one server, ids close together (the usual case): one range of entries_transaction_idx;
--   one server, ids spread among other sessions' (a long database transaction): one probe per
--     transaction (the lateral subquery keeps it a probe);
--   Citus: entries are distributed by account, so a range of transaction ids is on every shard.
--     When the engine wrote every one of these transactions, their legs are on the accounts it
--     locked (write_entries keeps them in ledger.entry_accounts, and the count of transactions in
--     ledger.engine_transactions): read on those accounts' shards, two for a transfer. A
--     transaction written past the engine (by hand, as the table owner) makes it read the range
--     on every shard. What remains unseen is a leg added by hand, into another account, to a
--     transaction the engine wrote in the same database transaction (docs/scale-out.md).
create or replace function ledger.legs_written(p_from bigint, p_upto bigint, p_count bigint)
returns table (transaction_id bigint, currency text, layer text, side text, amount bigint,
               effective_at timestamptz)
language plpgsql stable
as $$
declare
    v_accounts bigint[];
begin
    if ledger.distributed() and p_count = coalesce(nullif(current_setting('ledger.engine_transactions', true), '')::bigint, 0) then
        -- A variable, so that the statement's plan (custom on Citus, see post_batch) holds the
        -- ids as constants, which name the shards.
        v_accounts := coalesce(string_to_array(nullif(current_setting('ledger.entry_accounts', true), ''), ',')::bigint[],
                               '{}');
        return query
        select e.transaction_id, e.currency, e.layer, e.side, e.amount, e.effective_at
          from ledger.entries e
         where e.account_id = any(v_accounts)
           and e.transaction_id between p_from and p_upto;
    elsif p_upto - p_from < 4 * p_count or ledger.distributed() then
        return query
        select e.transaction_id, e.currency, e.layer, e.side, e.amount, e.effective_at
          from ledger.entries e
         where e.transaction_id between p_from and p_upto;
    else
        return query
        select e.transaction_id, e.currency, e.layer, e.side, e.amount, e.effective_at
          from ledger.transactions t
          cross join lateral (select * from ledger.entries e where e.transaction_id = t.id offset 0) e
         where t.created_xact = pg_current_xact_id();
    end if;
end
$$;

-- Invariant 1, at commit: debits equal credits per currency and layer, at least two legs, and
-- every leg carries its transaction's effective time.
--
-- The trigger fires for every transaction row, but the first firing checks every transaction
-- this database transaction wrote, in one statement, and records the highest id it covered
-- (transaction-local setting ledger.balanced_upto); the other firings find their row covered.
-- Identity ids rise within a database transaction, so a row written after a check (after SET
-- CONSTRAINTS ... IMMEDIATE) has a higher id and is checked again; and check_new_entries
-- refuses legs for a transaction already checked, so a checked transaction stays balanced.

-- The check itself, once per database transaction (the first firing not yet covered). It runs as
-- the owner, like ledger.post_batch, which wrote the legs: on Citus a database transaction reads
-- the shards it wrote only as the role that wrote them (the same connections), and the deferred
-- trigger fires at commit as the caller's role (ledger_app), outside post_batch.
create or replace function ledger.check_transactions_balanced() returns void
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
declare
    v_bad record;
    v_from bigint;
    v_upto bigint;
    v_count bigint;
    v_nestloop text;
begin
    -- JIT off for this check: without statistics the planner guesses thousands of legs per
    -- transaction, the estimate passes jit_above_cost, and compiling would cost ~100 ms a commit.
    -- (a local setting, not a SET clause: the database transaction is ending anyway.)
    perform set_config('jit', 'off', true);
    select min(t.id), max(t.id), count(*) into v_from, v_upto, v_count
      from ledger.transactions t where t.created_xact = pg_current_xact_id();
    -- Nested loops off: the legs meet their transactions in a hash join whatever the planner
    -- believes about their number.
    v_nestloop := current_setting('enable_nestloop');
    perform set_config('enable_nestloop', 'off', true);
    with mine as (
        select t.id, t.effective_at from ledger.transactions t
         where t.created_xact = pg_current_xact_id()),
    legs as (
        select * from ledger.legs_written(v_from, v_upto, v_count)),
    groups as (
        select m.id, l.currency, l.layer, count(l.transaction_id) as legs,
               sum(case when l.side = 'debit' then l.amount else -l.amount end) as net,
               bool_and(l.effective_at = m.effective_at) as same_time
          from mine m left join legs l on l.transaction_id = m.id
         group by m.id, l.currency, l.layer)
    select g.id, g.currency, g.layer, g.net, g.same_time, sum(g.legs) over (partition by g.id) as legs
      into v_bad
      from groups g
     order by (g.net <> 0 or not g.same_time or sum(g.legs) over (partition by g.id) < 2) desc nulls last, g.id
     limit 1;
    perform set_config('enable_nestloop', v_nestloop, true);
    if v_bad.legs < 2 then
        perform ledger.raise_error('LD002', format(
            'transaction %s has %s legs; a transaction needs at least two', v_bad.id, v_bad.legs),
            jsonb_build_object('transaction_id', v_bad.id, 'legs', v_bad.legs));
    elsif v_bad.net <> 0 then
        perform ledger.raise_error('LD002', format(
            'transaction %s does not balance: %s %s debits exceed credits by %s',
            v_bad.id, v_bad.currency, v_bad.layer, v_bad.net),
            jsonb_build_object('transaction_id', v_bad.id, 'currency', v_bad.currency,
                               'layer', v_bad.layer, 'difference', v_bad.net));
    elsif not v_bad.same_time then
        perform ledger.raise_error('LD002', format(
            'transaction %s has a leg whose effective time differs from the transaction''s', v_bad.id));
    end if;
    perform set_config('ledger.balanced_upto', v_upto::text, true);
end
$$;

-- Anyone may run the check (the trigger runs it as whoever commits): it reads nothing but this
-- database transaction's own transactions and legs, and records only what it found balanced, as
-- SET CONSTRAINTS ... IMMEDIATE would.

create or replace function ledger.check_transaction_balanced() returns trigger
language plpgsql
as $$
begin
    -- On a Citus worker (its copy of the reference table) the row was written by the
    -- coordinator's database transaction, which checks it there: asked only when it matters, so
    -- that one server pays nothing per row.
    if new.created_xact <> pg_current_xact_id() then
        if ledger.on_worker_node() then
            return null;
        end if;
        perform ledger.raise_error('LD002', format(
            'transaction %s claims to be written by another database transaction', new.id));
    end if;
    if new.id <= coalesce(nullif(current_setting('ledger.balanced_upto', true), '')::bigint, 0) then
        return null;
    end if;
    if ledger.on_worker_node() then
        return null;
    end if;

    perform ledger.check_transactions_balanced();
    return null;
end
$$;

-- A constraint trigger has no create or replace: dropped and made again.
drop trigger if exists transactions_balanced on ledger.transactions;
create constraint trigger transactions_balanced after insert on ledger.transactions
    deferrable initially deferred
    for each row execute function ledger.check_transaction_balanced();
