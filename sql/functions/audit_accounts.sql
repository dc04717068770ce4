-- For auditors (ledger_auditor): every account with its balances on its normal side, the head of
-- its entry chain, and its status and name/limit histories.
create or replace view ledger.audit_accounts as
select a.id as account_id, a.code, a.name, a.type, a.normal_side, a.currency, a.holder_id, a.min_balance,
       a.max_balance, a.status, a.metadata, a.created_at, a.created_xact, b.version,
       case a.normal_side when 'debit' then b.posted_debits - b.posted_credits
                          else b.posted_credits - b.posted_debits end as posted_balance,
       case a.normal_side when 'debit' then b.posted_debits - b.posted_credits + b.pending_debits - b.pending_credits
                          else b.posted_credits - b.posted_debits + b.pending_credits - b.pending_debits
       end as pending_balance,
       b.last_hash
  from ledger.accounts a
  join ledger.balances b on b.account_id = a.id;

create or replace view ledger.audit_account_history as
select s.account_id, 'status' as change, s.id, s.status, s.reason, null::text as name, null::bigint as min_balance,
       null::bigint as max_balance, s.changed_at, s.created_xact
  from ledger.account_status_changes s
union all
select c.account_id, 'change', c.id, null, null, c.name, c.min_balance, c.max_balance, c.changed_at, c.created_xact
  from ledger.account_changes c;

grant select on ledger.audit_accounts, ledger.audit_account_history to ledger_auditor;
