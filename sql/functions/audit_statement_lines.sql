-- For auditors (ledger_auditor): the lines of every account's statement, posted entries in
-- account version order with the balance after each, amounts in minor units.
create or replace view ledger.audit_statement_lines as
select a.code as account_code, a.currency, e.account_version, e.effective_at, e.recorded_at, e.transaction_id,
       t.kind, t.description,
       case when e.side = 'debit' then e.amount end as debit_minor,
       case when e.side = 'credit' then e.amount end as credit_minor,
       e.posted_balance_after as balance_minor
  from ledger.entries e
  join ledger.accounts a on a.id = e.account_id
  join ledger.transactions t on t.id = e.transaction_id
 where e.layer = 'posted';

grant select on ledger.audit_statement_lines to ledger_auditor;
