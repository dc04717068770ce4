-- requires: raise_error

-- Closing a period waits for postings under way (they hold the lock shared) and is monotonic.
create or replace function ledger.close_period(p_until timestamptz) returns bigint
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
declare
    v_closed_until timestamptz;
    v_id bigint;
begin
    -- The range every caller-supplied time lies in (sql/0082_instant_range.sql).
    if not (p_until >= '1970-01-01 00:00:00+00' and p_until < '9999-01-01 00:00:00+00') then
        perform ledger.raise_error('LD001', format(
            'until must lie in [1970-01-01T00:00:00Z, 9999-01-01T00:00:00Z), got %s', p_until),
            '{"field": "until"}');
    end if;
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
