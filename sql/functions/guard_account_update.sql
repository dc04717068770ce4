-- requires: raise_error

-- Identity columns of an account never change; status changes go through account_status_changes.
create or replace function ledger.guard_account_update() returns trigger
language plpgsql
as $$
begin
    if new.id <> old.id or new.code <> old.code or new.type <> old.type
       or new.normal_side <> old.normal_side or new.currency <> old.currency then
        perform ledger.raise_error('LD001', format(
            'account %s: id, code, type, normal side and currency never change', old.code),
            jsonb_build_object('field', 'code'));
    end if;
    return new;
end
$$;

create or replace trigger accounts_guard_update before update on ledger.accounts
    for each row execute function ledger.guard_account_update();
