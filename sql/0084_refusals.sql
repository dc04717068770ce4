-- Business refusals, one per idempotency key: a request the ledger refused for what it found
-- (funds, limits, accounts, holds, closed periods) keeps that answer, and a retry of the same
-- request with the same key is answered the same refusal, flagged as a replay. Malformed
-- requests are not recorded (sql/functions/refusals.sql decides). Append-only.
create table ledger.refusals (
    idempotency_key text primary key check (length(idempotency_key) between 1 and 200),
    fingerprint     bytea not null,   -- as ledger.transactions.fingerprint: the request without its key
    sqlstate        text not null check (sqlstate ~ '^LD[0-9]{3}$'),
    message         text not null,    -- without the "request N: " of the batch it was refused in
    details         jsonb not null default '{}' check (jsonb_typeof(details) = 'object'),
    refused_at      timestamptz not null default clock_timestamp()
);

grant select on ledger.refusals to ledger_app;
