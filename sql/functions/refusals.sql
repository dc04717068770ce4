-- requires: request_fingerprint

-- Records a request's business refusal under its key, once; called by the poster in its own short
-- transaction after the refused batch rolled back (ledger/posting.py), since anything the batch
-- wrote is undone with it. Only refusals that depend on the ledger's state are final for a key;
-- a malformed request (LD001, LD002), a key conflict (LD008) and timeouts are not recorded, so the
-- key stays free. A key that meanwhile committed a transaction keeps that. Returns whether recorded.
create or replace function ledger.record_refusal(p_request jsonb, p_sqlstate text, p_message text,
                                                 p_details jsonb)
returns boolean
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
declare
    v_key text := p_request ->> 'key';
begin
    if p_sqlstate not in ('LD003', 'LD004', 'LD005', 'LD006', 'LD007', 'LD009', 'LD010', 'LD011', 'LD012',
                          'LD013', 'LD014')
       or v_key is null or exists (select 1 from ledger.transactions t where t.idempotency_key = v_key) then
        return false;
    end if;
    insert into ledger.refusals (idempotency_key, fingerprint, sqlstate, message, details)
    values (v_key, ledger.request_fingerprint(p_request), p_sqlstate,
            regexp_replace(p_message, '^request \d+: ', ''),
            coalesce(p_details, '{}') - 'request' - 'replayed')
    on conflict (idempotency_key) do nothing;
    return found;
end
$$;

revoke all on function ledger.record_refusal(jsonb, text, text, jsonb) from public;
grant execute on function ledger.record_refusal(jsonb, text, text, jsonb) to ledger_app;
