-- Whether the ledger's tables are distributed (a Citus coordinator, docs/scale-out.md): the engine
-- then locks its accounts one statement per account, since Citus refuses one statement that
-- locks rows of several shards. False on one server, where nothing else changes.
create or replace function ledger.distributed() returns boolean
language plpgsql stable
as $$
declare
    v_distributed boolean;
begin
    if to_regclass('pg_catalog.pg_dist_partition') is null then
        return false;
    end if;
    execute 'select exists (select from pg_catalog.pg_dist_partition
                             where logicalrelid = to_regclass(''ledger.balances''))' into v_distributed;
    return v_distributed;
end
$$;
