-- requires: raise_error, distributed

create or replace function ledger.refuse_change() returns trigger
language plpgsql
as $$
begin
    -- On a Citus cluster the trigger fires on a shard (entries_102008): the table is named.
    perform ledger.raise_error('LD015', format(
        '%I.%I is append-only: %s is refused; correct a mistake with a new, reversing transaction',
        tg_table_schema,
        case when ledger.distributed() then regexp_replace(tg_table_name, '_[0-9]+$', '') else tg_table_name end,
        tg_op));
    return null;
end
$$;

-- Append-only tables refuse UPDATE, DELETE and TRUNCATE, for their owner too. The triggers are
-- made with `create or replace`, so that this file can be applied again.
create or replace procedure ledger.make_append_only(variadic p_tables text[])
language plpgsql
as $$
declare
    t text;
begin
    foreach t in array p_tables loop
        execute format('create or replace trigger %I before update or delete on ledger.%I
                        for each statement execute function ledger.refuse_change()',
                       t || '_no_change', t);
        execute format('create or replace trigger %I before truncate on ledger.%I
                        for each statement execute function ledger.refuse_change()',
                       t || '_no_truncate', t);
    end loop;
end
$$;

-- Every append-only table, listed here (a migration that adds one adds it to this list).
call ledger.make_append_only('transactions', 'entries', 'account_status_changes', 'account_changes',
                             'period_closes',
                             'api_tokens', 'api_token_revocations',
                             'checkpoints', 'checkpoint_heads', 'reconciliation_runs', 'reconciliation_items',
                             'reconciliation_matches', 'reconciliation_resolutions',
                             'merchant_settings', 'payments', 'payment_steps',
                             'purchase_invoices', 'factoring_advances', 'factoring_steps',
                             'credit_lines', 'loans', 'loan_plans', 'loan_instalments', 'loan_steps',
                             'loan_closures', 'credit_day_runs',
                             'funds', 'fund_incomes', 'fund_income_runs', 'refusals', 'cursor_key',
                             'balance_checkpoints', 'balance_checkpoint_sweeps',
                             'product_setting_changes', 'webhook_deliveries');

-- Accounts are never deleted; updates are guarded by guard_account_update. Two triggers, as for
-- the tables above: Citus makes no trigger that names TRUNCATE on the shards, so one for both
-- events would leave a DELETE on a cluster unrefused.
create or replace trigger accounts_no_delete before delete on ledger.accounts
    for each statement execute function ledger.refuse_change();
create or replace trigger accounts_no_truncate before truncate on ledger.accounts
    for each statement execute function ledger.refuse_change();
