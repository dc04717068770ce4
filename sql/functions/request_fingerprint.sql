-- What a request is, for replays: its canonical jsonb text without the idempotency key. A key
-- seen again with the same fingerprint is a replay; with another, a conflict.
create or replace function ledger.request_fingerprint(p_request jsonb) returns bytea
language sql immutable parallel safe
as $$ select sha256(convert_to((p_request - 'key')::text, 'UTF8')) $$;
