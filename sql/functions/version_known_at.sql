-- The account's last version recorded by p_known_at (0 before its first entry; null for no such
-- account). recorded_at rises with the version, so a binary search over the primary key finds it
-- in about log2(versions) probes.
create or replace function ledger.version_known_at(p_account_id bigint, p_known_at timestamptz) returns bigint
language plpgsql stable
as $$
declare
    v_low bigint := 0;   -- versions up to v_low were recorded by p_known_at
    v_high bigint;       -- versions after v_high were not
    v_mid bigint;
begin
    select b.version into v_high from ledger.balances b where b.account_id = p_account_id;
    -- The usual question, what is known now, is answered by the newest entry at once.
    if (select e.recorded_at from ledger.entries e
         where e.account_id = p_account_id and e.account_version = v_high) <= p_known_at then
        return v_high;
    end if;
    while v_low < v_high loop
        v_mid := (v_low + v_high + 1) / 2;
        if (select e.recorded_at from ledger.entries e
             where e.account_id = p_account_id and e.account_version = v_mid) <= p_known_at then
            v_low := v_mid;
        else
            v_high := v_mid - 1;
        end if;
    end loop;
    return case when v_high is not null then v_low end;
end
$$;
