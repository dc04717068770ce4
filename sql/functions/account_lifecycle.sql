-- requires: raise_error, distributed, set_lock_timeout

-- Status and limits of an account change here only (sql/0097_account_lifecycle.sql). Both lock
-- the account's balance row first, as ledger.post_batch does before it reads an account's status
-- and limits: a posting and a change to the same account run one after the other, never
-- interleaved, so a posting never lands on an account closed under it, and a close never sees a
-- balance that a posting is about to change.
--
-- Transitions (from -> to):
--   open   -> frozen   any time: the account takes no postings until reopened
--   open   -> closed   only with a zero posted balance and no open hold
--   frozen -> open     any time
--   frozen -> closed   as open -> closed
--   closed -> open     reopening: any time
--   closed -> frozen   refused (LD031): reopen first; a closed account holds nothing to freeze
--   x      -> x        nothing is written; the account is answered as it is
create or replace function ledger.set_account_status(p_code text, p_status text, p_reason text)
returns bigint
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
declare
    v_account ledger.accounts;
    v_balance ledger.balances;
    v_hold_count bigint;
    v_id bigint;
begin
    if current_setting('lock_timeout') = '0' then
        perform set_config('lock_timeout', (select value from ledger.settings where name = 'post_lock_timeout'), true);
    end if;
    if ledger.distributed() then
        -- The balance row is locked, and waited for, on a worker (as in post_batch).
        perform ledger.set_lock_timeout(current_setting('lock_timeout'));
    end if;
    if p_status is null or p_status not in ('open', 'frozen', 'closed') then
        perform ledger.raise_error('LD001', format('status must be open, frozen or closed, got %s', p_status),
                                   '{"field": "status"}');
    end if;
    if p_reason is null or length(p_reason) not between 1 and 500 then
        perform ledger.raise_error('LD001', 'reason must be 1 to 500 characters', '{"field": "reason"}');
    end if;
    select * into v_account from ledger.accounts where code = p_code;
    if not found then
        perform ledger.raise_error('LD004', format('no account with code %s', p_code),
                                   jsonb_build_object('account', p_code));
    end if;
    select * into v_balance from ledger.balances where account_id = v_account.id for update;
    -- Read again after the lock: a change committed while this one waited is the one to judge.
    select * into v_account from ledger.accounts where id = v_account.id;
    if v_account.status = p_status then
        return null;
    end if;
    if v_account.status = 'closed' and p_status = 'frozen' then
        perform ledger.raise_error('LD031', format(
            'account %s is closed: reopen it (ACTIVE) before freezing it', v_account.code),
            jsonb_build_object('account', v_account.code, 'from', v_account.status, 'to', p_status));
    end if;
    if p_status = 'closed' then
        select count(*) into v_hold_count from ledger.open_holds where account_id = v_account.id;
        if v_balance.posted_debits <> v_balance.posted_credits or v_hold_count > 0 then
            perform ledger.raise_error('LD030', format(
                'account %s cannot be closed: its posted balance is %s and it has %s open holds; '
                'both must be zero', v_account.code,
                case v_account.normal_side when 'debit' then v_balance.posted_debits - v_balance.posted_credits
                                           else v_balance.posted_credits - v_balance.posted_debits end,
                v_hold_count),
                jsonb_build_object('account', v_account.code,
                    'posted_balance', case v_account.normal_side
                        when 'debit' then v_balance.posted_debits - v_balance.posted_credits
                        else v_balance.posted_credits - v_balance.posted_debits end,
                    'open_holds', v_hold_count));
        end if;
    end if;
    insert into ledger.account_status_changes (account_id, status, reason)
        values (v_account.id, p_status, p_reason) returning id into v_id;
    return v_id;
end
$$;

revoke all on function ledger.set_account_status(text, text, text) from public;
grant execute on function ledger.set_account_status(text, text, text) to ledger_app;

-- New limits apply to later postings only, judged as every limit is (sql/functions/check_limits.sql):
-- a posting may not move the balance past a limit in the direction it moves it. A balance already
-- past a new limit is therefore allowed to stand; postings that would take it further are refused,
-- postings that bring it back are not. Returns whether anything changed (the trigger of
-- sql/functions/account_changed.sql records the new version in account_changes).
create or replace function ledger.set_account_limits(p_code text, p_min_balance bigint, p_max_balance bigint)
returns boolean
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
declare
    v_account ledger.accounts;
begin
    if current_setting('lock_timeout') = '0' then
        perform set_config('lock_timeout', (select value from ledger.settings where name = 'post_lock_timeout'), true);
    end if;
    if ledger.distributed() then
        -- The balance row is locked, and waited for, on a worker (as in post_batch).
        perform ledger.set_lock_timeout(current_setting('lock_timeout'));
    end if;
    if p_min_balance is not null and p_max_balance is not null and p_min_balance > p_max_balance then
        perform ledger.raise_error('LD001', format('minBalance %s is above maxBalance %s', p_min_balance, p_max_balance),
                                   '{"field": "minBalance"}');
    end if;
    select * into v_account from ledger.accounts where code = p_code;
    if not found then
        perform ledger.raise_error('LD004', format('no account with code %s', p_code),
                                   jsonb_build_object('account', p_code));
    end if;
    perform 1 from ledger.balances where account_id = v_account.id for update;
    update ledger.accounts set min_balance = p_min_balance, max_balance = p_max_balance
     where id = v_account.id
       and (min_balance, max_balance) is distinct from (p_min_balance, p_max_balance);
    return found;
end
$$;

revoke all on function ledger.set_account_limits(text, bigint, bigint) from public;
grant execute on function ledger.set_account_limits(text, bigint, bigint) to ledger_app;
