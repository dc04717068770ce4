-- On a Citus cluster (docs/scale-out.md) every node keeps a copy of each reference table, and a
-- row trigger fires on every copy. The triggers that write other tables, or check the database
-- transaction that wrote a row, act on the coordinator's copy alone: it fires in the
-- coordinator's own database transaction, once. On one server there is no worker: false.
create or replace function ledger.on_worker_node() returns boolean
language plpgsql stable
as $$
declare
    v_group int;
begin
    if to_regclass('pg_catalog.pg_dist_local_group') is null then
        return false;
    end if;
    execute 'select groupid from pg_catalog.pg_dist_local_group' into v_group;
    return coalesce(v_group, 0) <> 0;
end
$$;
