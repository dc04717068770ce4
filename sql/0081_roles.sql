-- Least privilege (docs/design.md, "Roles"): the application, auditors, and migrations.
--
-- Roles belong to the server, not the database: another database on the same server may create
-- them at the same moment, and the loser of that race sees unique_violation.

do $$
begin
    create role ledger_auditor nologin;
exception when duplicate_object or unique_violation then null;
end
$$;

do $$
begin
    create role ledger_migrator nologin;
exception when duplicate_object or unique_violation then null;
end
$$;

-- The application (graphql_api and the products) never reads token hashes (it checks a token
-- through ledger.api_token_by_sha256), never renames or re-limits an account, never changes an
-- account's status and never stores a checkpoint (operations do, as the owner).
revoke select on ledger.api_tokens from ledger_app;
revoke update on ledger.accounts from ledger_app;
revoke insert on ledger.account_status_changes, ledger.checkpoints, ledger.checkpoint_heads from ledger_app;

-- Auditors read the views of sql/functions/audit_*.sql and, so that `ledger-core verify` runs
-- as an auditor, the tables it recomputes; nothing else, and no secrets.
grant usage on schema ledger to ledger_auditor;
grant select on ledger.accounts, ledger.account_status_changes, ledger.account_changes, ledger.balances,
    ledger.transactions, ledger.entries, ledger.open_holds, ledger.checkpoints, ledger.checkpoint_heads
    to ledger_auditor;

-- Migrations: ledger_migrator owns the schema and (sql/functions/migrator_owns.sql, applied
-- after every migration) its tables, sequences and types. Run migrations as a member of it (or
-- as a superuser).
alter schema ledger owner to ledger_migrator;

-- Tables the migrator makes are readable by the application, as those of 0001 are.
alter default privileges for role ledger_migrator in schema ledger grant select on tables to ledger_app;
