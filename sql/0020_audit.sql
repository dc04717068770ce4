-- Audit and reconciliation: digest checkpoints and bank reconciliation runs (the journal horizon
-- they are taken at is sql/functions/journal_horizon.sql).
--
-- Checkpoints and reconciliation runs are records of what was seen: append-only like the
-- journal (statement triggers refuse UPDATE, DELETE, TRUNCATE).

-- Digest checkpoints ----------------------------------------------------------------------------

-- A digest of every chain head as of a snapshot (`position`, pg_snapshot text): the heads are,
-- per account, the entry of highest version among those whose transaction the snapshot sees.
create table ledger.checkpoints (
    id         bigint generated always as identity primary key,
    digest     text not null check (digest ~ '^v1:[0-9]+:[0-9]+:[0-9,]*:[0-9a-f]{64}$'),
    position   text not null,
    accounts   bigint not null check (accounts >= 0),
    entries    bigint not null check (entries >= 0),
    taken_at   timestamptz not null default clock_timestamp(),
    note       text not null default '' check (length(note) <= 200)
);

create index checkpoints_digest_idx on ledger.checkpoints (digest);

-- The heads a checkpoint's digest was computed from: they name the account that differs when
-- a later journal no longer reproduces the digest.
create table ledger.checkpoint_heads (
    checkpoint_id bigint not null references ledger.checkpoints (id),
    account_id    bigint not null references ledger.accounts (id),
    version       bigint not null check (version > 0),
    hash          bytea not null check (length(hash) = 32),
    primary key (checkpoint_id, account_id)
);

-- Bank reconciliation -----------------------------------------------------------------------------

create table ledger.reconciliation_runs (
    id                bigint generated always as identity primary key,
    account_id        bigint not null references ledger.accounts (id),
    -- sha256 of the file's bytes: the same file imported twice for an account is the same run.
    file_sha256       bytea not null check (length(file_sha256) = 32),
    file_name         text not null default '' check (length(file_name) <= 200),
    window_days       int not null check (window_days between 0 and 31),
    time_zone         text not null,           -- the zone the bank's dates are days in
    period_start      date not null,
    period_end        date not null check (period_end >= period_start),
    bank_lines        int not null check (bank_lines > 0),
    bank_total        bigint not null,
    ledger_total      bigint not null,
    matched           int not null,
    unmatched_bank    int not null,
    unmatched_ledger  int not null,
    created_at        timestamptz not null default clock_timestamp(),
    unique (account_id, file_sha256)
);

create table ledger.reconciliation_items (
    run_id          bigint not null references ledger.reconciliation_runs (id),
    item_no         int not null,
    -- matched: a bank line paired with an entry; bank: a bank line left over; ledger: an entry left over
    status          text not null check (status in ('matched', 'bank', 'ledger')),
    rule            text check (rule in ('reference', 'amount_date')),
    line_no         int,
    bank_date       date,
    reference       text,
    bank_amount     bigint,
    description     text,
    account_version bigint,
    transaction_id  bigint references ledger.transactions (id),
    entry_amount    bigint,
    effective_at    timestamptz,
    note            text not null default '',
    primary key (run_id, item_no),
    check ((status = 'ledger') = (line_no is null)),
    check ((status = 'bank') = (transaction_id is null)),
    check ((status = 'matched') = (rule is not null))
);

grant insert on ledger.checkpoints, ledger.checkpoint_heads, ledger.reconciliation_runs,
    ledger.reconciliation_items to ledger_app;
