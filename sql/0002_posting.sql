-- The types the posting engine (sql/functions/post_batch.sql and the functions it calls) passes
-- between its steps.

create type ledger.request as (
    pos          int,
    key          text,
    fp           bytea,
    kind         text,
    description  text,
    effective_at timestamptz,
    metadata     jsonb,
    op           text,
    expires_at   timestamptz,
    target_id    bigint,
    amount       bigint,
    legs         jsonb
);

create type ledger.account_ref as (id bigint, currency text);
create type ledger.seen as (id bigint, same boolean);

-- An account with its balances and active holds, read once per batch after it is locked.
create type ledger.account_state as (
    id              bigint,
    code            text,
    normal_side     text,
    currency        text,
    status          text,
    min_balance     bigint,
    max_balance     bigint,
    version         bigint,
    posted_debits   bigint,
    posted_credits  bigint,
    pending_debits  bigint,
    pending_credits bigint,
    last_hash       bytea,
    out_active      bigint,
    in_active       bigint
);

-- An entry as computed for a batch, before it is written.
create type ledger.entry_row as (
    account_id      bigint,
    account_version bigint,
    transaction_id  bigint,
    currency        text,
    side            text,
    amount          bigint,
    layer           text,
    effective_at    timestamptz,
    posted_after    bigint,
    pending_after   bigint,
    hash            bytea
);

create type ledger.leg as (
    pos        int,
    leg_no     int,
    account_id bigint,
    side       text,
    amount     bigint,
    layer      text
);
