-- Per-account balance checkpoints (docs/design.md, "Balance checkpoints"): what an account's
-- posted entries before a position in effective order add up to, as known at one of its
-- versions, so that a statement's opening balance or a balance as of an effective time reads a
-- bounded number of entries wherever in a long history it falls. Not to be confused with
-- ledger.checkpoints (digests of the chain heads, sql/0020_audit.sql).
--
-- Written only by ledger.sweep_balance_checkpoints (sql/functions/balance_checkpoints.sql),
-- which a job runs (`ledger-core balance-checkpoints`); the posting path does not change.

-- A row holds the sum and count of the account's posted entries that come before the entry
-- (effective_at, entry_id) in effective order and have account_version <= account_version.
create table ledger.balance_checkpoints (
    account_id      bigint not null references ledger.accounts (id),
    effective_at    timestamptz not null,
    entry_id        bigint not null,
    account_version bigint not null check (account_version > 0),
    posted_balance  bigint not null,
    posted_entries  bigint not null check (posted_entries > 0),
    created_at      timestamptz not null default clock_timestamp(),
    primary key (account_id, effective_at, entry_id, account_version)
);

-- One row per sweep of an account: at its version every checkpoint of the account (the newest
-- row of each position, among those written by then) is exact. A reader starts from the newest
-- sweep it may see and reads the entries recorded since.
create table ledger.balance_checkpoint_sweeps (
    account_id      bigint not null references ledger.accounts (id),
    account_version bigint not null check (account_version > 0),
    swept_at        timestamptz not null default clock_timestamp(),
    every_entries   integer not null check (every_entries > 0),
    primary key (account_id, account_version)
);

-- The application and auditors read both; nobody but the sweep (security definer) writes them,
-- so a forged checkpoint cannot come from the application's credentials.
revoke all on ledger.balance_checkpoints, ledger.balance_checkpoint_sweeps from public;
revoke insert, update, delete, truncate on ledger.balance_checkpoints, ledger.balance_checkpoint_sweeps
    from ledger_app;
grant select on ledger.balance_checkpoints, ledger.balance_checkpoint_sweeps to ledger_app, ledger_auditor;
