-- requires: raise_error, on_worker_node

-- Every transaction: effective time outside closed periods and not too far ahead, checked once
-- per statement over all its rows. The shared advisory lock makes a concurrent period close wait
-- for postings already under way.
create or replace function ledger.check_transaction_time() returns trigger
language plpgsql
as $$
declare
    v_closed_until timestamptz;
    v_future_max interval;
    v_earliest timestamptz;
    v_latest timestamptz;
begin
    if ledger.on_worker_node() then
        return null;
    end if;
    perform pg_advisory_xact_lock_shared(7260001);
    select min(n.effective_at), max(n.effective_at) into v_earliest, v_latest from new_transactions n;
    select closed_until into v_closed_until
      from ledger.period_closes order by closed_until desc limit 1;
    if v_closed_until is not null and v_earliest <= v_closed_until then
        perform ledger.raise_error('LD009', format(
            'effective time %s lies in a closed period (closed until %s)', v_earliest, v_closed_until),
            jsonb_build_object('effective_at', v_earliest, 'closed_until', v_closed_until));
    end if;
    select value::interval into v_future_max from ledger.settings where name = 'future_effective_max';
    if v_latest > clock_timestamp() + v_future_max then
        perform ledger.raise_error('LD001', format(
            'effective time %s is more than %s in the future', v_latest, v_future_max),
            jsonb_build_object('field', 'effectiveAt'));
    end if;
    return null;
end
$$;

create or replace trigger transactions_check_time after insert on ledger.transactions
    referencing new table as new_transactions
    for each statement execute function ledger.check_transaction_time();
