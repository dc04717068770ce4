-- requires: distributed

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
-- On a Citus cluster (docs/scale-out.md, "The journal feed across nodes") a transaction that
-- wrote on several workers commits by 2PC: its parts are prepared on the workers, it commits
-- here, and only then do the workers commit their parts (COMMIT PREPARED). For that moment the
-- coordinator sees it finished while a worker does not yet show its entries, so its id and its
-- recorded time also hold both back (ledger.prepared_on_workers, read after the sessions here:
-- a transaction that had not committed here when they were read is counted among them). One
-- server has no workers: ledger.distributed() is false and nothing more is read.
-- Security definer: other users' sessions are hidden from ordinary roles in pg_stat_activity.
create or replace function ledger.journal_horizon(out known_at timestamptz, out xmin xid8)
language plpgsql volatile security definer set search_path = pg_catalog
as $$
declare
    -- Read the clock and the next transaction id first, the sessions after (see above).
    v_now timestamptz := clock_timestamp();
    v_xmax xid8 := pg_snapshot_xmax(pg_current_snapshot());
    v_xmax32 bigint;
    v_behind bigint;
    v_oldest_start timestamptz;
    v_prepared xid8[];
    v_prepared_recorded timestamptz;
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
    -- Only client sessions write the journal. A background worker is left out of known_at: an
    -- autovacuum ANALYZE takes a transaction id well after its transaction began, and counting
    -- it would move known_at back behind a cut already handed out as final.
    select min(s) into v_oldest_start
      from (select a.xact_start as s from pg_stat_activity a
             where a.datname = current_database() and a.backend_xid is not null and a.pid <> pg_backend_pid()
               and a.backend_type = 'client backend'
            union all
            select p.prepared from pg_prepared_xacts p where p.database = current_database()) x;
    known_at := least(v_now, v_oldest_start) - interval '1 microsecond';
    xmin := case when v_behind is null then v_xmax
                 else (v_xmax::text::numeric - v_behind)::text::xid8 end;
    if ledger.distributed() then
        select p.xids, p.recorded_at into v_prepared, v_prepared_recorded from ledger.prepared_on_workers() p;
        xmin := least(xmin, (select x from unnest(v_prepared) x order by x limit 1));
        known_at := least(known_at, v_prepared_recorded - interval '1 microsecond');
    end if;
end
$$;

-- On a Citus coordinator: the transactions that committed here while a part of them is still
-- prepared on a worker, and the earliest time they recorded. Citus records each prepared part
-- (pg_dist_transaction: the worker's gid) in the transaction that commits here, so the record's
-- xmin is that transaction's id, the created_xact of what it wrote. Read committed (each
-- statement its own snapshot; journal_horizon called in its own statement): a gid still prepared
-- whose record is not visible belongs to a transaction that had not committed here when the
-- statement began, which journal_horizon counted among the running ones. Under an older snapshot
-- (inside a caller's repeatable-read transaction) that does not hold, and such gids are waited
-- for until their worker has committed them (milliseconds, bounded by the caller's statement
-- timeout). A worker that does not answer is an error: what it holds cannot be known final.
create or replace function ledger.prepared_on_workers(out xids xid8[], out recorded_at timestamptz)
language plpgsql volatile security definer set search_path = pg_catalog
as $$
declare
    v_xmax xid8 := pg_snapshot_xmax(pg_current_snapshot());
    v_xmax32 bigint := (v_xmax::text::numeric % 4294967296)::bigint;
    v_gids text[];
    v_unknown text[];
    v_sleep_s float8 := 0.001;
begin
    v_gids := ledger.gids_prepared_on_workers();
    -- A record is committed, so its 32-bit xmin is below xmax: its distance back gives the 64-bit id.
    select array_agg(distinct (v_xmax::text::numeric
                               - (v_xmax32 - d.xmin::text::bigint + 4294967296) % 4294967296)::text::xid8)
               filter (where d.gid is not null),
           array_agg(g) filter (where d.gid is null)
      into xids, v_unknown
      from unnest(v_gids) g
      left join pg_dist_transaction d on d.gid = g;
    if v_unknown is not null and current_setting('transaction_isolation') <> 'read committed' then
        while v_unknown && ledger.gids_prepared_on_workers() loop
            perform pg_sleep(v_sleep_s);
            v_sleep_s := least(v_sleep_s * 2, 0.1);
        end loop;
    end if;
    select min(t.recorded_at) into recorded_at from ledger.transactions t where t.created_xact = any (xids);
end
$$;

-- The gids of this database's transactions prepared on the workers now.
create or replace function ledger.gids_prepared_on_workers() returns text[]
language plpgsql volatile security definer set search_path = pg_catalog
as $$
declare
    v_gids text[];
    v_failed text;
begin
    select coalesce(array_agg(g.gid) filter (where g.gid is not null), '{}'),
           min(r.nodename || ':' || r.nodeport || ': ' || r.result) filter (where not r.success)
      into v_gids, v_failed
      from run_command_on_workers(
             $q$select coalesce(string_agg(gid, ' '), '') from pg_prepared_xacts
                 where database = current_database()$q$) r
      left join lateral unnest(string_to_array(nullif(r.result, ''), ' ')) g(gid) on r.success;
    if v_failed is not null then
        raise exception 'the journal horizon cannot be read: worker %', v_failed using errcode = '08006';
    end if;
    return v_gids;
end
$$;

revoke all on function ledger.prepared_on_workers() from public;
revoke all on function ledger.gids_prepared_on_workers() from public;
revoke all on function ledger.journal_horizon() from public;
grant execute on function ledger.journal_horizon() to ledger_app;
