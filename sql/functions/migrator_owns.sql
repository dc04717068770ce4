-- ledger_migrator (sql/0081_roles.sql) owns every table, sequence and type of the schema. Called
-- here, and so again after every migration (which applies every definition again), so that what
-- a later migration makes is the migrator's too. Functions and views belong to whoever applies
-- the definitions.
create or replace procedure ledger.migrator_owns()
language plpgsql
as $$
declare
    r record;
begin
    for r in select c.relname from pg_class c
              where c.relnamespace = 'ledger'::regnamespace and c.relkind in ('r', 'p')
                and c.relowner <> 'ledger_migrator'::regrole loop
        execute format('alter table ledger.%I owner to ledger_migrator', r.relname);
    end loop;
    -- Sequences that belong to a column follow their table; the others are moved here.
    for r in select c.relname from pg_class c
              where c.relnamespace = 'ledger'::regnamespace and c.relkind = 'S'
                and c.relowner <> 'ledger_migrator'::regrole
                and not exists (select 1 from pg_depend d
                                 where d.classid = 'pg_class'::regclass and d.objid = c.oid
                                   and d.deptype in ('a', 'i')) loop
        execute format('alter sequence ledger.%I owner to ledger_migrator', r.relname);
    end loop;
    for r in select t.typname from pg_type t left join pg_class c on c.oid = t.typrelid
              where t.typnamespace = 'ledger'::regnamespace and t.typelem = 0
                and t.typowner <> 'ledger_migrator'::regrole
                and (t.typtype in ('e', 'd') or (t.typtype = 'c' and c.relkind = 'c')) loop
        execute format('alter type ledger.%I owner to ledger_migrator', r.typname);
    end loop;
end
$$;

call ledger.migrator_owns();
