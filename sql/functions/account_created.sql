-- requires: on_worker_node

create or replace function ledger.account_created() returns trigger
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
begin
    if ledger.on_worker_node() then
        return null;
    end if;
    insert into ledger.balances (account_id) values (new.id);
    insert into ledger.account_status_changes (account_id, status, reason)
        values (new.id, new.status, 'created');
    return null;
end
$$;

create or replace trigger accounts_created after insert on ledger.accounts
    for each row execute function ledger.account_created();
