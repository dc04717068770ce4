-- Account lifecycle (docs/design.md, "Account lifecycle"): status and limits change only through
-- ledger.set_account_status and ledger.set_account_limits (sql/functions/account_lifecycle.sql),
-- which run as their owner and are the application's only way to change an account. The
-- application keeps no UPDATE on accounts and no INSERT on account_status_changes (0081): it may
-- call the two functions, which check what a change needs and lock as a posting does.

-- A reason says why an account was frozen, closed or reopened; bounded like other free text.
alter table ledger.account_status_changes
    add constraint account_status_changes_reason_length check (length(reason) <= 500);
