-- API bearer tokens. Only the sha256 of a token is stored: the token itself is shown once, when
-- it is created. Tokens and their revocations are append-only: a revocation is a new row, so who
-- could do what, and until when, stays on record.

create table ledger.api_tokens (
    id           bigint generated always as identity primary key,
    token_sha256 bytea not null unique check (length(token_sha256) = 32),
    role         text not null check (role in ('admin', 'operator', 'auditor', 'holder')),
    -- A holder token sees only the accounts carrying its holder id; other roles have none.
    holder_id    text check (length(holder_id) between 1 and 100),
    note         text not null default '' check (length(note) <= 200),
    created_at   timestamptz not null default clock_timestamp(),
    check ((role = 'holder') = (holder_id is not null))
);

create table ledger.api_token_revocations (
    token_id   bigint primary key references ledger.api_tokens (id),
    revoked_at timestamptz not null default clock_timestamp(),
    reason     text not null default '' check (length(reason) <= 200)
);
