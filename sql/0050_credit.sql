-- Consumer credit: the immutable facts beside the journal (see ledger/products/credit.py).
--
-- No amount here ever changes. What a loan owes, has paid and is overdue is read from the
-- journal: each loan has its own receivable accounts (principal, instalment fees, interest,
-- late fees) and its own allowance for credit losses, and `loan_steps` says which journal
-- transaction is which step of which loan. A loan's terms and schedule are facts fixed when
-- they are made; converting a purchase into instalments adds a new plan, it edits nothing.
-- Every table is append-only except the product settings.

-- Product settings, one row per name (values as text, parsed and checked by credit.py).
create table ledger.credit_settings (
    name  text primary key check (name ~ '^[a-z][a-z0-9_]*$'),
    value text not null check (length(value) between 1 and 200)
);

insert into ledger.credit_settings (name, value) values
    ('interest_free_days', '30'),            -- purchase to due date
    ('late_fee_rate_per_day', '0.0005'),     -- of the overdue amount, each day
    ('late_fee_stop_dpd', '90'),             -- no late fees once days past due exceed this
    ('write_off_dpd', '180'),                -- written off once days past due exceed this
    ('payoff_remaining_fees', 'all'),        -- early payoff charges the unbilled fees: all | none
    ('provision_rate_current', '0.01'),
    ('provision_rate_1_30', '0.10'),
    ('provision_rate_31_60', '0.25'),
    ('provision_rate_61_90', '0.50'),
    ('provision_rate_91_180', '0.75');

-- A customer's credit line; the latest row applies. A new limit is a new row.
create table ledger.credit_lines (
    id          bigint generated always as identity primary key,
    customer_id text not null check (length(customer_id) between 1 and 100),
    limit_fen   bigint not null check (limit_fen >= 0),
    recorded_at timestamptz not null default clock_timestamp()
);

create index credit_lines_customer_idx on ledger.credit_lines (customer_id, id desc);

create sequence ledger.loan_seq as bigint;

-- One row per loan: who, what, the terms fixed at opening and its accounts.
create table ledger.loans (
    seq                   bigint primary key default nextval('ledger.loan_seq'),
    id                    text not null unique,
    idempotency_key       text not null unique,
    request               jsonb not null,               -- what was asked, to answer replays
    kind                  text not null check (kind in ('purchase', 'loan')),
    customer_id           text not null,
    merchant_id           text,
    principal_fen         bigint not null check (principal_fen > 0),
    opened_at             timestamptz not null,
    monthly_rate          numeric not null default 0 check (monthly_rate >= 0),
    method                text check (method in ('annuity', 'equal_principal')),
    late_fee_rate_per_day numeric not null check (late_fee_rate_per_day >= 0),
    principal_account_id  bigint not null references ledger.accounts (id),
    fees_account_id       bigint not null references ledger.accounts (id),
    interest_account_id   bigint not null references ledger.accounts (id),
    late_fees_account_id  bigint not null references ledger.accounts (id),
    allowance_account_id  bigint not null references ledger.accounts (id),
    recorded_at           timestamptz not null default clock_timestamp(),
    check ((kind = 'purchase') = (merchant_id is not null)),
    check ((kind = 'loan') = (method is not null))
);

create index loans_customer_idx on ledger.loans (customer_id, seq);

-- A repayment plan; the loan follows its latest. Plan 1 is made at opening, a conversion into
-- instalments adds plan 2.
create table ledger.loan_plans (
    loan_id          text not null references ledger.loans (id),
    plan_no          int not null check (plan_no between 1 and 2),
    idempotency_key  text not null unique,
    request          jsonb not null,
    monthly_fee_rate numeric not null default 0 check (monthly_fee_rate >= 0),
    made_at          timestamptz not null,
    recorded_at      timestamptz not null default clock_timestamp(),
    primary key (loan_id, plan_no)
);

create table ledger.loan_instalments (
    loan_id       text not null,
    plan_no       int not null,
    number        int not null check (number between 1 and 360),
    due_date      date not null,
    principal_fen bigint not null check (principal_fen >= 0),
    interest_fen  bigint not null check (interest_fen >= 0),
    fee_fen       bigint not null check (fee_fen >= 0),
    primary key (loan_id, plan_no, number),
    foreign key (loan_id, plan_no) references ledger.loan_plans (loan_id, plan_no)
);

create index loan_instalments_due_idx on ledger.loan_instalments (due_date);

-- Which journal transaction is which step of which loan, written in the same database
-- transaction as the posting: a look-alike transaction posted through the generic API never
-- counts as a repayment.
create table ledger.loan_steps (
    transaction_id bigint primary key references ledger.transactions (id),
    loan_id        text not null references ledger.loans (id),
    step           text not null check (step in (
                       'open', 'bill', 'late_fee', 'repay', 'payoff', 'provision', 'write_off', 'recover')),
    business_date  date not null
);

create index loan_steps_loan_idx on ledger.loan_steps (loan_id, step);

-- A loan stops billing and charging once settled early or written off.
create table ledger.loan_closures (
    loan_id        text primary key references ledger.loans (id),
    reason         text not null check (reason in ('paid_off', 'written_off')),
    business_date  date not null,
    transaction_id bigint not null references ledger.transactions (id)
);

-- One row per run of the daily job (a re-run of a date adds a row that posted nothing new).
create table ledger.credit_day_runs (
    id          bigint generated always as identity primary key,
    run_date    date not null,
    bills       int not null,
    late_fees   int not null,
    provisions  int not null,
    write_offs  int not null,
    ran_at      timestamptz not null default clock_timestamp()
);
