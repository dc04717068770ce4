-- Bank reconciliation across runs: the matches that hold from one run to the next, how breaks
-- were resolved, and the encoding a file was read in. Records of what was done: append-only.

-- The encoding the bank's file was read in: UTF-8 (with or without a byte-order mark) when it is
-- valid UTF-8, else GB18030 (a superset of GBK, which Chinese banks write).
alter table ledger.reconciliation_runs
    add column encoding text not null default 'utf-8' check (encoding in ('utf-8', 'gb18030'));

-- An entry matched to a bank line, once: later runs leave it out. The item is the match's own
-- (it names the entry's transaction). No foreign key to the entries: the journal's refusal of
-- TRUNCATE must stay its own append-only error.
create table ledger.reconciliation_matches (
    account_id      bigint not null,
    account_version bigint not null,
    run_id          bigint not null,
    item_no         int not null,
    primary key (account_id, account_version),
    foreign key (run_id, item_no) references ledger.reconciliation_items (run_id, item_no)
);

-- How a break (a bank line or an entry left unmatched by a run) was resolved, and by whom; once.
create table ledger.reconciliation_resolutions (
    run_id      bigint not null,
    item_no     int not null,
    reason      text not null check (length(reason) between 1 and 1000),
    resolved_by text not null check (length(resolved_by) between 1 and 200),
    resolved_at timestamptz not null default clock_timestamp(),
    primary key (run_id, item_no),
    foreign key (run_id, item_no) references ledger.reconciliation_items (run_id, item_no)
);

-- A bank reference matches whatever the entry's date: looked up by reference, not by date.
create index transactions_bank_reference_idx on ledger.transactions ((metadata ->> 'bank_reference'))
    where metadata ? 'bank_reference';

grant insert on ledger.reconciliation_matches, ledger.reconciliation_resolutions to ledger_app;
