-- requires: on_worker_node

create or replace function ledger.account_status_changed() returns trigger
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
begin
    if ledger.on_worker_node() then
        return null;
    end if;
    update ledger.accounts set status = new.status where id = new.account_id and status <> new.status;
    return null;
end
$$;

create or replace trigger account_status_changes_apply after insert on ledger.account_status_changes
    for each row execute function ledger.account_status_changed();
