-- requires: raise_error, append_only

-- A webhook endpoint's address, events and origin never change (a new endpoint is made instead),
-- and a deleted endpoint never changes again: it stays only for its delivery log.
create or replace function ledger.guard_webhook_endpoint_update() returns trigger
language plpgsql
as $$
begin
    if new.id <> old.id or new.url <> old.url or new.events <> old.events
       or new.created_by <> old.created_by or new.created_at <> old.created_at then
        perform ledger.raise_error('LD015', format(
            'webhook endpoint %s: url, events and creation never change; make a new endpoint', old.id));
    end if;
    if old.status = 'deleted' then
        perform ledger.raise_error('LD015', format('webhook endpoint %s is deleted: it never changes again', old.id));
    end if;
    return new;
end
$$;

create or replace trigger webhook_endpoints_guard_update before update on ledger.webhook_endpoints
    for each row execute function ledger.guard_webhook_endpoint_update();

-- Endpoints are never removed: the delivery log refers to them. Two triggers, not one for both
-- events: Citus makes no trigger that names TRUNCATE on the shards, so one for both would leave
-- a DELETE on a cluster unrefused.
create or replace trigger webhook_endpoints_no_delete before delete on ledger.webhook_endpoints
    for each statement execute function ledger.refuse_change();
create or replace trigger webhook_endpoints_no_truncate before truncate on ledger.webhook_endpoints
    for each statement execute function ledger.refuse_change();
