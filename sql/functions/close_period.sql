-- requires: raise_error

-- Closing a period waits for postings under way (they hold the lock shared) and is monotonic.
create or replace function ledger.close_period(p_until timestamptz) returns bigint
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
declare
    v_closed_until timestamptz;
    v_id bigint;
begin
    perform pg_advisory_xact_lock(7260001);
    select max(closed_until) into v_closed_until from ledger.period_closes;
    if v_closed_until is not null and p_until <= v_closed_until then
        perform ledger.raise_error('LD009', format('the books are already closed until %s', v_closed_until),
                                   jsonb_build_object('closed_until', v_closed_until));
    end if;
    if p_until > clock_timestamp() then
        perform ledger.raise_error('LD001', format('cannot close a period that has not ended: %s is in the future',
                                   p_until), '{"field": "until"}');
    end if;
    insert into ledger.period_closes (closed_until) values (p_until) returning id into v_id;
    return v_id;
end
$$;

revoke all on function ledger.close_period(timestamptz) from public;
grant execute on function ledger.close_period(timestamptz) to ledger_app;
