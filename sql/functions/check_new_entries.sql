-- requires: raise_error, on_worker_node

-- New legs, checked once per statement: each belongs to an existing account and carries its
-- currency (invariant 3), and joins only a transaction written in the same database transaction,
-- so a committed (and so balanced) transaction can never be unbalanced later by appending a leg.
create or replace function ledger.check_new_entries() returns trigger
language plpgsql
as $$
declare
    v_bad record;
    v_checked_upto bigint := coalesce(nullif(current_setting('ledger.balanced_upto', true), '')::bigint, 0);
begin
    -- On a Citus cluster the entries live on the workers, whose database transactions are not
    -- the coordinator's: the coordinator checks the legs at commit (check_transaction_balanced),
    -- and the engine takes each leg's account and currency from the locked account rows.
    if ledger.on_worker_node() then
        return null;
    end if;
    -- One index probe per distinct account and per distinct transaction (a batch's legs share
    -- both); the limit keeps each lateral subquery a probe, never a join over a whole table.
    select e.account_id, e.currency, a.id as found_account, a.currency as account_currency
      into v_bad
      from (select distinct n.account_id, n.currency from new_entries n) e
      left join lateral (select a.id, a.currency from ledger.accounts a where a.id = e.account_id limit 1) a on true
     where a.id is null or a.currency <> e.currency
     limit 1;
    if found then
        if v_bad.found_account is null then
            perform ledger.raise_error('LD004', format('a leg names account id %s, which does not exist',
                                       v_bad.account_id));
        end if;
        perform ledger.raise_error('LD003', format('a leg in %s on account id %s, which is in %s',
                                   v_bad.currency, v_bad.account_id, v_bad.account_currency));
    end if;

    select e.transaction_id, t.id as found_transaction, t.created_xact = pg_current_xact_id() as same_xact
      into v_bad
      from (select distinct n.transaction_id from new_entries n) e
      left join lateral (select t.id, t.created_xact from ledger.transactions t
                          where t.id = e.transaction_id limit 1) t on true
     where t.id is null or t.created_xact <> pg_current_xact_id() or t.id <= v_checked_upto
     limit 1;
    if not found then
        return null;
    elsif v_bad.found_transaction is null then
        perform ledger.raise_error('LD013', format('a leg names transaction %s, which does not exist',
                                   v_bad.transaction_id));
    elsif not v_bad.same_xact then
        perform ledger.raise_error('LD002', format(
            'transaction %s is already committed; legs cannot be added to it', v_bad.transaction_id));
    end if;
    perform ledger.raise_error('LD002', format(
        'transaction %s was already checked for balance; legs cannot be added to it', v_bad.transaction_id));
    return null;
end
$$;

create or replace trigger entries_check_new_rows after insert on ledger.entries
    referencing new table as new_entries
    for each statement execute function ledger.check_new_entries();
