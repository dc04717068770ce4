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
end
$$;

revoke all on function ledger.journal_horizon() from public;
grant execute on function ledger.journal_horizon() to ledger_app;
