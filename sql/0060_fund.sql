-- Idle-funds yield: money-market funds, the income figures they publish, and the record of each
-- day's distribution to holders (ledger/products/fund.py, fund_income.py).
--
-- All three tables are append-only: a published figure is never corrected in place (the fund
-- publishes once per day; a different figure for a published day is refused), and a finished
-- distribution is a fact.

create table ledger.funds (
    id          bigint generated always as identity primary key,
    fund_id     text not null unique check (fund_id ~ '^[A-Za-z0-9_.-]{1,40}$'),
    name        text not null check (length(name) between 1 and 200),
    created_at  timestamptz not null default clock_timestamp()
);

-- Income per 10,000 units published by the fund for a calendar day (Asia/Shanghai), 4 decimals.
create table ledger.fund_incomes (
    fund_id         text not null references ledger.funds (fund_id),
    income_date     date not null,
    income_per_10k  numeric(9, 4) not null check (income_per_10k >= 0 and income_per_10k <= 10000),
    published_at    timestamptz not null default clock_timestamp(),
    primary key (fund_id, income_date)
);

-- One row per finished distribution: written after the last batch of income transactions, so a
-- figure without a run is a distribution to resume (its batches replay by idempotency key).
create table ledger.fund_income_runs (
    fund_id         text not null,
    income_date     date not null,
    holders         bigint not null check (holders >= 0),
    income_fen      bigint not null check (income_fen >= 0),
    transactions    bigint not null check (transactions >= 0),
    started_at      timestamptz not null,
    completed_at    timestamptz not null default clock_timestamp(),
    primary key (fund_id, income_date),
    foreign key (fund_id, income_date) references ledger.fund_incomes (fund_id, income_date)
);

grant select, insert on ledger.funds, ledger.fund_incomes, ledger.fund_income_runs to ledger_app;
