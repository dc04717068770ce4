-- Tamper evidence over everything that gives an entry meaning (docs/design.md, "Hash chain").
--
-- Entries hashed before this migration keep their encoding (chain_version 1: entry fields only);
-- new entries use chain_version 2, whose payload also carries the sha256 of their transaction's
-- canonical fields. Adding the column with default 1 fills existing rows without a rewrite.
alter table ledger.entries add column chain_version smallint not null default 1
    check (chain_version in (1, 2));
alter table ledger.entries alter column chain_version set default 2;

-- The database transaction that wrote an account or a status change, so that a digest covers
-- exactly what its snapshot saw. Null for rows written before this migration: they precede every
-- digest that covers accounts.
alter table ledger.accounts add column created_xact xid8;
alter table ledger.accounts alter column created_xact set default pg_current_xact_id();
alter table ledger.account_status_changes add column created_xact xid8;
alter table ledger.account_status_changes alter column created_xact set default pg_current_xact_id();

-- Name, limits and metadata of an account may change: each version is recorded here (by a
-- trigger on accounts), never overwritten; accounts holds the latest.
create table ledger.account_changes (
    id           bigint generated always as identity primary key,
    account_id   bigint not null references ledger.accounts (id),
    name         text not null,
    min_balance  bigint,
    max_balance  bigint,
    metadata     jsonb not null,
    changed_at   timestamptz not null default clock_timestamp(),
    created_xact xid8 default pg_current_xact_id()
);

create index account_changes_account_idx on ledger.account_changes (account_id, id);

-- Existing accounts start their history with what they hold now.
insert into ledger.account_changes (account_id, name, min_balance, max_balance, metadata, changed_at, created_xact)
select id, name, min_balance, max_balance, metadata, created_at, null from ledger.accounts order by id;

-- Checkpoints of digest version 2 also hold, per account, its record hash and the heads of its
-- status and change chains; an account without entries has version 0.
alter table ledger.checkpoints drop constraint checkpoints_digest_check;
alter table ledger.checkpoints add constraint checkpoints_digest_check
    check (digest ~ '^v[12]:[0-9]+:[0-9]+:[0-9,]*:[0-9a-f]{64}$');
alter table ledger.checkpoint_heads drop constraint checkpoint_heads_version_check;
alter table ledger.checkpoint_heads add constraint checkpoint_heads_version_check check (version >= 0);
alter table ledger.checkpoint_heads
    add column record_hash  bytea check (length(record_hash) = 32),
    add column status_count bigint check (status_count >= 0),
    add column status_head  bytea check (length(status_head) = 32),
    add column change_count bigint check (change_count >= 0),
    add column change_head  bytea check (length(change_head) = 32);

grant select on ledger.account_changes to ledger_app;
