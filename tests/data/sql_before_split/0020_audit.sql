-- Audit and reconciliation: the journal horizon, digest checkpoints, bank reconciliation runs.
--
-- Checkpoints and reconciliation runs are records of what was seen: append-only like the
-- journal (statement triggers refuse UPDATE, DELETE, TRUNCATE).

-- The journal horizon -----------------------------------------------------------------------------

-- The journal horizon: a safe cut for the journal feed and for statements. Call it in its own
-- statement BEFORE the statement or transaction that reads the journal with it: everything it
-- promises holds for any snapshot taken after it returns.
--   xmin      every database transaction of this database below it has finished, so the journal
--             transactions with created_xact < xmin are final and visible to a later snapshot
--             (the journal feed's horizon). It is the oldest transaction id in use in this
--             database when called (else the next id to be assigned). Proof: an id below the
--             snapshot's xmax read first was assigned before; if its transaction still ran when
--             pg_stat_activity was read just after, it is counted there (its database never
--             changes); if not, it had finished before any later snapshot.
--   known_at  a recorded time no transaction still running here can write at or before: a writer
--             records its entries at clock_timestamp() after it took a row lock (which gave it an
--             id), so its recorded_at is after its xact_start. A statement cut at known_at reads
--             the same when reproduced later.
-- Transactions in other databases of the server do not hold either back.
-- Security definer: other users' sessions are hidden from ordinary roles in pg_stat_activity.
create function ledger.journal_horizon(out known_at timestamptz, out xmin xid8)
language plpgsql volatile security definer set search_path = pg_catalog
as $$
declare
    -- Read the clock and the next transaction id first, the sessions after (see above).
    v_now timestamptz := clock_timestamp();
    v_xmax xid8 := pg_snapshot_xmax(pg_current_snapshot());
    v_xmax32 bigint;
    v_behind bigint;
    v_oldest_start timestamptz;
begin
    perform pg_stat_clear_snapshot();  -- sessions as they are now, not as cached earlier in a transaction
    v_xmax32 := (v_xmax::text::numeric % 4294967296)::bigint;
    -- backend_xid is 32-bit: its distance behind xmax (modulo 2^32) gives the 64-bit id. Ids
    -- given out after xmax was read come out "more than 2^31 behind": they are not older.
    select max(d.behind) into v_behind
      from (select (v_xmax32 - x.xid32 + 4294967296) % 4294967296 as behind
      from (select a.backend_xid::text::bigint as xid32 from pg_stat_activity a
             where a.datname = current_database() and a.backend_xid is not null
            union all
            select p.transaction::text::bigint from pg_prepared_xacts p
             where p.database = current_database()) x) d
     where d.behind between 1 and 2147483647;
    select min(s) into v_oldest_start
      from (select a.xact_start as s from pg_stat_activity a
             where a.datname = current_database() and a.backend_xid is not null and a.pid <> pg_backend_pid()
            union all
            select p.prepared from pg_prepared_xacts p where p.database = current_database()) x;
    known_at := least(v_now, v_oldest_start) - interval '1 microsecond';
    xmin := case when v_behind is null then v_xmax
                 else (v_xmax::text::numeric - v_behind)::text::xid8 end;
end
$$;

revoke all on function ledger.journal_horizon() from public;
grant execute on function ledger.journal_horizon() to ledger_app;

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

call ledger.make_append_only('checkpoints', 'checkpoint_heads', 'reconciliation_runs', 'reconciliation_items');

grant insert on ledger.checkpoints, ledger.checkpoint_heads, ledger.reconciliation_runs,
    ledger.reconciliation_items to ledger_app;
