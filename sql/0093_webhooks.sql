-- Webhooks: endpoints that hear about every journal transaction, where each one has got to in
-- the journal feed, and the log of every delivery attempt (docs/design.md, "Webhooks").

-- An endpoint: where to send, which events, and the secret the signatures are made with. Only
-- its status changes (active, disabled, deleted); a deleted endpoint keeps its row (its
-- delivery log refers to it) but loses its secret, and never changes again.
create table ledger.webhook_endpoints (
    id          bigint generated always as identity primary key,
    url         text not null check (length(url) between 1 and 2000),
    events      text[] not null check (cardinality(events) between 1 and 10),
    secret      text check (length(secret) between 16 and 256),
    status      text not null default 'active' check (status in ('active', 'disabled', 'deleted')),
    created_by  text not null check (length(created_by) between 1 and 200),
    created_at  timestamptz not null default clock_timestamp(),
    changed_at  timestamptz,
    check ((status = 'deleted') = (secret is null))
);

-- Where an endpoint has got to in the journal feed: it has been sent everything at or before
-- (after_xact, after_transaction_id), the feed's order. `attempts` counts the failed attempts
-- at the next transaction, tried again from `next_attempt_at`. Rewritten after every attempt.
create table ledger.webhook_positions (
    endpoint_id          bigint primary key references ledger.webhook_endpoints (id),
    after_xact           xid8 not null,
    after_transaction_id bigint not null check (after_transaction_id >= 0),
    attempts             int not null default 0 check (attempts >= 0),
    next_attempt_at      timestamptz,
    updated_at           timestamptz not null default clock_timestamp()
);

-- Every delivery attempt, as it happened: append-only.
create table ledger.webhook_deliveries (
    id              bigint generated always as identity primary key,
    endpoint_id     bigint not null references ledger.webhook_endpoints (id),
    event_id        text not null check (length(event_id) between 1 and 100),
    event_type      text not null check (length(event_type) between 1 and 100),
    transaction_id  bigint not null,
    attempt         int not null check (attempt >= 1),
    attempted_at    timestamptz not null default clock_timestamp(),
    duration_ms     int not null check (duration_ms >= 0),
    status_code     int check (status_code between 100 and 999),
    error           text check (length(error) <= 1000),
    delivered       boolean not null,
    next_attempt_at timestamptz,
    check (delivered = (error is null)),
    check (not delivered or next_attempt_at is null)
);

create index webhook_deliveries_endpoint_idx on ledger.webhook_deliveries (endpoint_id, id);

grant select, insert on ledger.webhook_endpoints, ledger.webhook_deliveries to ledger_app;
grant update (status, secret, changed_at) on ledger.webhook_endpoints to ledger_app;
grant select, insert, update on ledger.webhook_positions to ledger_app;
