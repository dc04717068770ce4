-- Every time and date a caller can supply lies in [1970-01-01T00:00:00Z, 9999-01-01T00:00:00Z):
-- what the API, the core's Python (which cannot hold year 0 or year 10000) and the database all
-- accept. A row outside it would be written and then break every read of it for good.
--
-- Added as plain (validated) constraints: existing rows are checked now. A database that already
-- holds an out-of-range row refuses this migration, naming the constraint; such a row cannot be
-- read by the core anyway and, the tables being append-only, is for the owner to deal with
-- before migrating (docs/design.md, "Refusals, timeouts and retries").

alter table ledger.transactions
    add constraint transactions_effective_at_range
        check (effective_at >= '1970-01-01 00:00:00+00' and effective_at < '9999-01-01 00:00:00+00'),
    add constraint transactions_expires_at_range
        check (expires_at >= '1970-01-01 00:00:00+00' and expires_at < '9999-01-01 00:00:00+00');

alter table ledger.entries
    add constraint entries_effective_at_range
        check (effective_at >= '1970-01-01 00:00:00+00' and effective_at < '9999-01-01 00:00:00+00');

alter table ledger.open_holds
    add constraint open_holds_expires_at_range
        check (expires_at >= '1970-01-01 00:00:00+00' and expires_at < '9999-01-01 00:00:00+00');

alter table ledger.period_closes
    add constraint period_closes_closed_until_range
        check (closed_until >= '1970-01-01 00:00:00+00' and closed_until < '9999-01-01 00:00:00+00');

alter table ledger.loans
    add constraint loans_opened_at_range
        check (opened_at >= '1970-01-01 00:00:00+00' and opened_at < '9999-01-01 00:00:00+00');

alter table ledger.loan_plans
    add constraint loan_plans_made_at_range
        check (made_at >= '1970-01-01 00:00:00+00' and made_at < '9999-01-01 00:00:00+00');

alter table ledger.loan_instalments
    add constraint loan_instalments_due_date_range
        check (due_date >= '1970-01-01' and due_date < '9999-01-01');

alter table ledger.loan_steps
    add constraint loan_steps_business_date_range
        check (business_date >= '1970-01-01' and business_date < '9999-01-01');

alter table ledger.loan_closures
    add constraint loan_closures_business_date_range
        check (business_date >= '1970-01-01' and business_date < '9999-01-01');

alter table ledger.credit_day_runs
    add constraint credit_day_runs_run_date_range
        check (run_date >= '1970-01-01' and run_date < '9999-01-01');

alter table ledger.purchase_invoices
    add constraint purchase_invoices_dates_range
        check (issued_on >= '1970-01-01' and due_date < '9999-01-01');

alter table ledger.factoring_advances
    add constraint factoring_advances_advanced_on_range
        check (advanced_on >= '1970-01-01' and advanced_on < '9999-01-01');

alter table ledger.fund_incomes
    add constraint fund_incomes_income_date_range
        check (income_date >= '1970-01-01' and income_date < '9999-01-01');

alter table ledger.reconciliation_runs
    add constraint reconciliation_runs_period_range
        check (period_start >= '1970-01-01' and period_end < '9999-01-01');

alter table ledger.reconciliation_items
    add constraint reconciliation_items_bank_date_range
        check (bank_date >= '1970-01-01' and bank_date < '9999-01-01');
