-- requires: on_worker_node

-- Every version of an account's name, limits and metadata is recorded in account_changes, so a
-- digest covers them as of its position while accounts holds the latest.
create or replace function ledger.account_changed() returns trigger
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
begin
    if ledger.on_worker_node() then
        return null;
    end if;
    if tg_op = 'INSERT' or (new.name, new.min_balance, new.max_balance, new.metadata)
                           is distinct from (old.name, old.min_balance, old.max_balance, old.metadata) then
        insert into ledger.account_changes (account_id, name, min_balance, max_balance, metadata)
            values (new.id, new.name, new.min_balance, new.max_balance, new.metadata);
    end if;
    return null;
end
$$;

create or replace trigger accounts_changes_recorded after insert or update on ledger.accounts
    for each row execute function ledger.account_changed();
