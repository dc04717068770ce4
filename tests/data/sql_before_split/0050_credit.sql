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

call ledger.make_append_only('credit_lines', 'loans', 'loan_plans', 'loan_instalments', 'loan_steps',
                             'loan_closures', 'credit_day_runs');

-- Every loan's state as of an effective time, in one set-based pass, derived from the journal:
-- balances of its receivables and allowance, what was paid per component, what fell due before
-- `p_on`, the oldest due date not fully paid and so the days past due. Payments are allocated
-- per component oldest instalment first, which is the order repayments pay them in.
-- PL/pgSQL rather than SQL so that its plan is cached across the daily job's thousands of calls
-- (planning cost as much as running). A loan counts as closed as of the effective time of the
-- transaction that closed it, not of its business date: the daily job judges a day as of its
-- start, so a loan paid off during the day is still open for that day whether the job ran
-- before the payoff or is re-run after it.
create function ledger.credit_loan_state(p_before timestamptz, p_on date, p_loan_ids text[] default null)
returns table (
    loan_id text, customer_id text, closed text,
    principal_fen bigint, fees_fen bigint, interest_fen bigint, late_fees_fen bigint, allowance_fen bigint,
    overdue_fen bigint, days_past_due int,
    paid_principal_fen bigint, paid_fees_fen bigint, paid_interest_fen bigint)
language plpgsql stable
as $$
#variable_conflict use_column
begin
    return query
    with l as (
        select l.* from ledger.loans l where p_loan_ids is null or l.id = any(p_loan_ids)),
    moves as (
        select l.id as loan_id,
               sum(a.sign * case when e.side = 'debit' then e.amount else -e.amount end)
                   filter (where a.part = 'principal') as principal,
               sum(a.sign * case when e.side = 'debit' then e.amount else -e.amount end)
                   filter (where a.part = 'fees') as fees,
               sum(a.sign * case when e.side = 'debit' then e.amount else -e.amount end)
                   filter (where a.part = 'interest') as interest,
               sum(a.sign * case when e.side = 'debit' then e.amount else -e.amount end)
                   filter (where a.part = 'late_fees') as late_fees,
               sum(a.sign * case when e.side = 'debit' then e.amount else -e.amount end)
                   filter (where a.part = 'allowance') as allowance,
               sum(e.amount) filter (where a.part = 'principal' and e.side = 'credit'
                                       and s.step in ('repay', 'payoff')) as paid_principal,
               sum(e.amount) filter (where a.part = 'fees' and e.side = 'credit'
                                       and s.step in ('repay', 'payoff')) as paid_fees,
               sum(e.amount) filter (where a.part = 'interest' and e.side = 'credit'
                                       and s.step in ('repay', 'payoff')) as paid_interest
          from l
          -- One index probe per account; the allowance is a contra account (credit normal).
          cross join lateral (values (l.principal_account_id, 'principal', 1), (l.fees_account_id, 'fees', 1),
                                     (l.interest_account_id, 'interest', 1),
                                     (l.late_fees_account_id, 'late_fees', 1),
                                     (l.allowance_account_id, 'allowance', -1)) a(account_id, part, sign)
          join ledger.entries e
            on e.account_id = a.account_id and e.layer = 'posted' and e.effective_at < p_before
          left join ledger.loan_steps s on s.transaction_id = e.transaction_id
         group by l.id),
    plan as (
        select p.loan_id, max(p.plan_no) as plan_no
          from ledger.loan_plans p join l on l.id = p.loan_id
         where p.made_at < p_before
         group by p.loan_id),
    sched as (
        select i.loan_id, i.due_date,
               sum(i.principal_fen) over w as cum_principal,
               sum(i.fee_fen) over w as cum_fees,
               sum(i.interest_fen) over w as cum_interest
          from ledger.loan_instalments i join plan p using (loan_id, plan_no)
        window w as (partition by i.loan_id order by i.number)),
    due as (
        select s.loan_id,
               max(s.cum_principal) filter (where s.due_date < p_on) as due_principal,
               max(s.cum_fees) filter (where s.due_date < p_on) as due_fees,
               max(s.cum_interest) filter (where s.due_date < p_on) as due_interest,
               min(s.due_date) filter (where s.due_date < p_on and (
                       s.cum_principal > coalesce(m.paid_principal, 0)
                    or s.cum_fees > coalesce(m.paid_fees, 0)
                    or s.cum_interest > coalesce(m.paid_interest, 0))) as oldest_unpaid
          from sched s left join moves m using (loan_id)
         group by s.loan_id)
    select l.id, l.customer_id, c.reason,
           coalesce(m.principal, 0)::bigint, coalesce(m.fees, 0)::bigint, coalesce(m.interest, 0)::bigint,
           coalesce(m.late_fees, 0)::bigint, coalesce(m.allowance, 0)::bigint,
           case when c.reason is not null then 0 else (
               greatest(coalesce(d.due_principal, 0) - coalesce(m.paid_principal, 0), 0)
             + greatest(coalesce(d.due_fees, 0) - coalesce(m.paid_fees, 0), 0)
             + greatest(coalesce(d.due_interest, 0) - coalesce(m.paid_interest, 0), 0)) end::bigint,
           case when c.reason = 'paid_off' or d.oldest_unpaid is null then 0
                else p_on - d.oldest_unpaid end,
           coalesce(m.paid_principal, 0)::bigint, coalesce(m.paid_fees, 0)::bigint,
           coalesce(m.paid_interest, 0)::bigint
      from l
      left join moves m on m.loan_id = l.id
      left join due d on d.loan_id = l.id
      -- Closed by a transaction the journal knew as of p_before (a payoff later that day counts
      -- from the next day on, however late the job runs).
      left join (select c.loan_id, c.reason from ledger.loan_closures c
                   join ledger.transactions t on t.id = c.transaction_id
                  where t.effective_at < p_before) c on c.loan_id = l.id;
end
$$;


-- Delinquency bucket by days past due (the write-off line is a product setting).
create function ledger.credit_bucket(p_days_past_due int, p_closed text, p_write_off_dpd int) returns text
language sql immutable
as $$
    select case when p_closed = 'written_off' or (p_closed is null and p_days_past_due > p_write_off_dpd)
                     then 'write_off'
                when p_closed = 'paid_off' or p_days_past_due = 0 then 'current'
                when p_days_past_due <= 30 then '1_30'
                when p_days_past_due <= 60 then '31_60'
                when p_days_past_due <= 90 then '61_90'
                else '91_180' end
$$;
