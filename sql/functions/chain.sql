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

-- Version 2 (docs/design.md, "Hash chain"). A field is written as '-' when null, else as its
-- length in UTF-8 bytes, ':' and its text, so that no text can forge a separator.
create or replace function ledger.hash_field(p_text text) returns text
language sql immutable parallel safe
as $$ select coalesce(octet_length(p_text)::text || ':' || p_text, '-') $$;

create or replace function ledger.epoch_us(p_at timestamptz) returns text
language sql immutable parallel safe
as $$ select (extract(epoch from p_at) * 1000000)::bigint::text $$;

-- sha256 of a transaction's canonical fields: what its entries' version 2 payloads carry.
create or replace function ledger.transaction_hash(t ledger.transactions) returns bytea
language sql stable parallel safe
as $$
    select sha256(convert_to('transaction' || '|' || concat_ws('|',
        ledger.hash_field(t.id::text), ledger.hash_field(t.idempotency_key),
        ledger.hash_field(encode(t.fingerprint, 'hex')), ledger.hash_field(t.kind),
        ledger.hash_field(t.description), ledger.hash_field(ledger.epoch_us(t.effective_at)),
        ledger.hash_field(ledger.epoch_us(t.recorded_at)), ledger.hash_field(t.metadata::text),
        ledger.hash_field(t.is_hold::text), ledger.hash_field(ledger.epoch_us(t.expires_at)),
        ledger.hash_field(t.reverses_id::text), ledger.hash_field(t.resolves_hold_id::text),
        ledger.hash_field(t.hold_action), ledger.hash_field(t.created_xact::text)), 'UTF8'))
$$;

-- An entry's version 2 payload: the version 1 encoding, '|', and its transaction's hash in hex.
create or replace function ledger.entry_payload_v2(
    p_account_id bigint, p_account_version bigint, p_transaction_id bigint, p_currency text,
    p_side text, p_amount bigint, p_layer text, p_effective_at timestamptz,
    p_recorded_at timestamptz, p_posted_after bigint, p_pending_after bigint, p_transaction_hash bytea
) returns bytea
language sql stable parallel safe
as $$
    select ledger.entry_payload(p_account_id, p_account_version, p_transaction_id, p_currency, p_side,
                                p_amount, p_layer, p_effective_at, p_recorded_at, p_posted_after,
                                p_pending_after)
           || convert_to('|' || encode(p_transaction_hash, 'hex'), 'UTF8')
$$;

-- sha256 of the fields of an account that never change.
create or replace function ledger.account_record_hash(a ledger.accounts) returns bytea
language sql stable parallel safe
as $$
    select sha256(convert_to('account' || '|' || concat_ws('|',
        ledger.hash_field(a.id::text), ledger.hash_field(a.code), ledger.hash_field(a.type),
        ledger.hash_field(a.normal_side), ledger.hash_field(a.currency), ledger.hash_field(a.holder_id),
        ledger.hash_field(ledger.epoch_us(a.created_at)), ledger.hash_field(a.created_xact::text)), 'UTF8'))
$$;

-- Payloads of the per-account chains over status changes and over name/limit changes.
create or replace function ledger.status_change_payload(s ledger.account_status_changes) returns bytea
language sql stable parallel safe
as $$
    select convert_to('status' || '|' || concat_ws('|',
        ledger.hash_field(s.id::text), ledger.hash_field(s.account_id::text), ledger.hash_field(s.status),
        ledger.hash_field(s.reason), ledger.hash_field(ledger.epoch_us(s.changed_at)),
        ledger.hash_field(s.created_xact::text)), 'UTF8')
$$;

create or replace function ledger.account_change_payload(c ledger.account_changes) returns bytea
language sql stable parallel safe
as $$
    select convert_to('change' || '|' || concat_ws('|',
        ledger.hash_field(c.id::text), ledger.hash_field(c.account_id::text), ledger.hash_field(c.name),
        ledger.hash_field(c.min_balance::text), ledger.hash_field(c.max_balance::text),
        ledger.hash_field(c.metadata::text), ledger.hash_field(ledger.epoch_us(c.changed_at)),
        ledger.hash_field(c.created_xact::text)), 'UTF8')
$$;
