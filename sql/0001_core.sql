-- The journal: accounts, transactions, entries, and the projections derived from them.
--
-- Invariants (docs/design.md numbering), enforced by these tables and by the functions and triggers
-- in sql/functions/:
--   1 balance        deferred constraint trigger on transactions, checked at commit
--   2 append-only    statement triggers refuse UPDATE/DELETE/TRUNCATE; privileges revoked
--   3 amounts        CHECK amount > 0; composite FK makes a leg's currency its account's
--   4 limits         ledger.post_batch checks under row locks taken in account id order
--   5 idempotency    unique idempotency_key + request fingerprint, compared on replay
--   6 holds          unique resolves_hold_id: a hold is posted or voided once
--   7 tamper         per-account sha256 chain over entries, verified by `ledger-core verify`
--   8 nothing lost   one database transaction per batch
--
-- Errors raised by those functions use SQLSTATE class LD; ledger/errors.py maps each code to a class.

create schema if not exists ledger;

do $$
begin
    create role ledger_app nologin;
-- Roles belong to the server, not the database: a migration of another database on the same
-- server may create it at the same moment, and the loser of that race sees unique_violation.
exception when duplicate_object or unique_violation then null;
end
$$;

grant usage on schema ledger to ledger_app;

-- Accounts ---------------------------------------------------------------------------------------

create table ledger.accounts (
    id          bigint generated always as identity primary key,
    code        text not null unique
                check (code ~ '^[a-z][a-z0-9_-]*(:[A-Za-z0-9_.-]+)*$' and length(code) <= 200),
    name        text not null check (length(name) <= 200),
    type        text not null check (type in ('asset', 'liability', 'equity', 'revenue', 'expense')),
    -- Derived from type except for contra accounts (an allowance is an asset with a credit balance).
    normal_side text not null check (normal_side in ('debit', 'credit')),
    currency    text not null check (currency ~ '^[A-Z]{3}$'),
    holder_id   text check (length(holder_id) between 1 and 100),
    -- Lowest and highest allowed balance on the normal side; null means unbounded.
    min_balance bigint,
    max_balance bigint,
    status      text not null default 'open' check (status in ('open', 'frozen', 'closed')),
    metadata    jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    created_at  timestamptz not null default clock_timestamp(),
    check (min_balance is null or max_balance is null or min_balance <= max_balance)
);

create index accounts_holder_idx on ledger.accounts (holder_id, code) where holder_id is not null;
create index accounts_code_prefix_idx on ledger.accounts (code text_pattern_ops);

-- Status changes are recorded, never overwritten; accounts.status is the latest of them.
create table ledger.account_status_changes (
    id          bigint generated always as identity primary key,
    account_id  bigint not null references ledger.accounts (id),
    status      text not null check (status in ('open', 'frozen', 'closed')),
    reason      text not null default '',
    changed_at  timestamptz not null default clock_timestamp()
);

create index account_status_changes_account_idx on ledger.account_status_changes (account_id, id);

-- Balance projection: a cache of what the entries sum to, updated in the same transaction.
create table ledger.balances (
    account_id      bigint primary key references ledger.accounts (id),
    version         bigint not null default 0,
    posted_debits   bigint not null default 0,
    posted_credits  bigint not null default 0,
    pending_debits  bigint not null default 0,
    pending_credits bigint not null default 0,
    last_hash       bytea  not null default decode(repeat('00', 32), 'hex')
);

-- Transactions -----------------------------------------------------------------------------------

create table ledger.transactions (
    id               bigint generated always as identity primary key,
    idempotency_key  text not null unique check (length(idempotency_key) between 1 and 200),
    fingerprint      bytea not null,
    kind             text not null check (kind ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$' and length(kind) <= 100),
    description      text not null default '' check (length(description) <= 1000),
    effective_at     timestamptz not null,
    recorded_at      timestamptz not null default clock_timestamp(),
    metadata         jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    is_hold          boolean not null default false,
    expires_at       timestamptz,
    reverses_id      bigint references ledger.transactions (id),
    resolves_hold_id bigint references ledger.transactions (id),
    hold_action      text check (hold_action in ('post', 'void')),
    -- The database transaction that wrote the row: entries may only join a transaction in the
    -- database transaction that created it, and the journal feed orders by it (see 0003).
    created_xact     xid8 not null default pg_current_xact_id(),
    check (expires_at is null or is_hold),
    check ((resolves_hold_id is null) = (hold_action is null)),
    check (not (is_hold and (reverses_id is not null or resolves_hold_id is not null)))
);

create index transactions_effective_idx on ledger.transactions (effective_at, id);
-- A transaction is reversed at most once and a hold resolved at most once. Partial indexes: most
-- transactions do neither, and a full index would take an entry for every one of them.
create unique index transactions_reverses_id_key on ledger.transactions (reverses_id)
    where reverses_id is not null;
create unique index transactions_resolves_hold_id_key on ledger.transactions (resolves_hold_id)
    where resolves_hold_id is not null;
create index transactions_xact_idx on ledger.transactions (created_xact, id);

create table ledger.entries (
    -- account_id and transaction_id are checked once per statement by
    -- entries_check_new_rows rather than row by row by foreign keys (whose row locks on
    -- accounts would serialise and slow every posting).
    account_id            bigint not null,
    account_version       bigint not null check (account_version > 0),
    id                    bigint generated always as identity,
    transaction_id        bigint not null,
    currency              text not null,
    side                  text not null check (side in ('debit', 'credit')),
    amount                bigint not null check (amount > 0),
    layer                 text not null check (layer in ('posted', 'pending')),
    effective_at          timestamptz not null,
    recorded_at           timestamptz not null,
    -- The account's balances on its normal side after this entry, in account version order.
    posted_balance_after  bigint not null,
    pending_balance_after bigint not null,
    -- sha256(previous entry's hash of this account || canonical encoding of this entry).
    hash                  bytea not null check (length(hash) = 32),
    -- Keyed by account so that an account's rows live together (and can be colocated on Citus).
    primary key (account_id, account_version)
);

create index entries_transaction_idx on ledger.entries (transaction_id);
create index entries_account_effective_idx on ledger.entries (account_id, effective_at, id);
create index entries_account_recorded_idx on ledger.entries (account_id, recorded_at, account_version);
-- Holds open at a past time are found among an account's pending legs only.
create index entries_account_pending_idx on ledger.entries (account_id, effective_at) where layer = 'pending';

-- Open holds per account: the projection of pending transactions not yet posted or voided.
create table ledger.open_holds (
    account_id  bigint not null references ledger.accounts (id),
    hold_id     bigint not null references ledger.transactions (id),
    -- Amounts the hold moves against (out) and towards (in) the account's normal side.
    amount_out  bigint not null check (amount_out >= 0),
    amount_in   bigint not null check (amount_in >= 0),
    expires_at  timestamptz,
    primary key (account_id, hold_id)
);

create index open_holds_hold_idx on ledger.open_holds (hold_id);

-- Closed periods: nothing may be posted with an effective time at or before closed_until.
create table ledger.period_closes (
    id           bigint generated always as identity primary key,
    closed_until timestamptz not null unique,
    closed_at    timestamptz not null default clock_timestamp()
);

-- Settings the engine reads; a row per name, values as text.
create table ledger.settings (
    name  text primary key,
    value text not null
);

insert into ledger.settings (name, value) values
    ('future_effective_max', '7 days'),   -- how far ahead an effective time may lie
    ('batch_size_max', '10000'),           -- transactions in one call of post_batch
    ('legs_per_transaction_max', '100'),
    ('hold_lifetime_max', '30 days');     -- also the expiry of a hold made without one

-- Privileges: the application reads everything and writes the journal only through functions.
revoke all on all tables in schema ledger from public;
grant select on all tables in schema ledger to ledger_app;
grant insert on ledger.accounts, ledger.account_status_changes to ledger_app;
grant update (name, min_balance, max_balance, metadata) on ledger.accounts to ledger_app;
alter default privileges in schema ledger grant select on tables to ledger_app;
