-- The canonical encoding of an entry: fields joined by '|', timestamps as microseconds since
-- the Unix epoch, UTF-8. ledger/audit.py encodes the same bytes independently.
-- Declared stable (as concat_ws is) so that the planner inlines it.
create or replace function ledger.entry_payload(
    p_account_id bigint, p_account_version bigint, p_transaction_id bigint, p_currency text,
    p_side text, p_amount bigint, p_layer text, p_effective_at timestamptz,
    p_recorded_at timestamptz, p_posted_after bigint, p_pending_after bigint
) returns bytea
language sql stable parallel safe
as $$
    select convert_to(concat_ws('|',
        p_account_id, p_account_version, p_transaction_id, p_currency, p_side, p_amount, p_layer,
        (extract(epoch from p_effective_at) * 1000000)::bigint,
        (extract(epoch from p_recorded_at) * 1000000)::bigint,
        p_posted_after, p_pending_after), 'UTF8')
$$;

-- PL/pgSQL rather than SQL: an aggregate's transition function is never inlined, and a call of a
-- PL/pgSQL function with one simple expression costs less than a call of a SQL function.
create or replace function ledger.chain_step(p_state bytea, p_seed bytea, p_payload bytea) returns bytea
language plpgsql immutable parallel safe
as $$ begin return sha256(coalesce(p_state, p_seed) || p_payload); end $$;

-- Used as a running window aggregate: chain(seed, payload) over (partition by account order by
-- version) yields every entry's hash in one set-based pass.
create or replace aggregate ledger.chain(bytea, bytea) (sfunc = ledger.chain_step, stype = bytea);
