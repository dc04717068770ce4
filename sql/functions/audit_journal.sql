-- For auditors (ledger_auditor): every entry with its transaction and account, in the words of
-- the journal feed. Read-only and free of secrets; a view keeps the tables free to change.
create or replace view ledger.audit_journal as
select t.id as transaction_id, t.created_xact, t.idempotency_key, t.kind, t.description,
       t.effective_at as transaction_effective_at, t.recorded_at as transaction_recorded_at, t.metadata,
       t.is_hold, t.expires_at, t.reverses_id, t.resolves_hold_id, t.hold_action,
       e.account_id, a.code as account_code, e.account_version, e.currency, e.side, e.amount, e.layer,
       e.effective_at, e.recorded_at, e.posted_balance_after, e.pending_balance_after, e.chain_version, e.hash
  from ledger.transactions t
  join ledger.entries e on e.transaction_id = t.id
  join ledger.accounts a on a.id = e.account_id;

grant select on ledger.audit_journal to ledger_auditor;
