-- requires: account_heads

-- For auditors (ledger_auditor): stored checkpoints with their lines, and every account's line as
-- the books give it now (ledger.account_heads), to compare.
create or replace view ledger.audit_checkpoints as
select c.id as checkpoint_id, c.digest, c.position, c.accounts, c.entries, c.taken_at, c.note,
       h.account_id, a.code as account_code, h.version, h.hash, h.record_hash, h.status_count, h.status_head,
       h.change_count, h.change_head
  from ledger.checkpoints c
  join ledger.checkpoint_heads h on h.checkpoint_id = c.id
  join ledger.accounts a on a.id = h.account_id;

grant select on ledger.audit_checkpoints, ledger.account_heads to ledger_auditor;
