-- The journal: accounts, transactions, entries, and the projections derived from them.
--
-- Invariants enforced here (DESIGN.md numbering):
--   1 balance        deferred constraint trigger on transactions, checked at commit
--   2 append-only    statement triggers refuse UPDATE/DELETE/TRUNCATE; privileges revoked
--   3 amounts        CHECK amount > 0; composite FK makes a leg's currency its account's
--   4 limits         ledger.post_batch checks under row locks taken in account id order
--   5 idempotency    unique idempotency_key + request fingerprint, compared on replay
--   6 holds          unique resolves_hold_id: a hold is posted or voided once
--   7 tamper         per-account sha256 chain over entries, verified by `ledger-core verify`
--   8 nothing lost   one database transaction per batch
--
-- Errors raised here use SQLSTATE class LD; ledger/errors.py maps each code to a class.

create schema if not exists ledger;

do $$
begin
    create role ledger_app nologin;
exception when duplicate_object then null;
end
$$;

grant usage on schema ledger to ledger_app;

-- Accounts ---------------------------------------------------------------------------------------

create table ledger.accounts (
    id          bigint generated always as identity primary key,
    code        text not null unique
                check (code ~ '^[a-z][a-z0-9_-]*(:[A-Za-z0-9_.-]+)*$' and length(code) <= 200),
    name        text not null check (length(name) <= 200),
    type        text not null check (type in ('asset', 'liability', 'equity', 'revenue', 'expense')),
    -- Derived from type except for contra accounts (an allowance is an asset with a credit balance).
    normal_side text not null check (normal_side in ('debit', 'credit')),
    currency    text not null check (currency ~ '^[A-Z]{3}$'),
    holder_id   text check (length(holder_id) between 1 and 100),
    -- Lowest and highest allowed balance on the normal side; null means unbounded.
    min_balance bigint,
    max_balance bigint,
    status      text not null default 'open' check (status in ('open', 'frozen', 'closed')),
    metadata    jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    created_at  timestamptz not null default clock_timestamp(),
    check (min_balance is null or max_balance is null or min_balance <= max_balance)
);

create index accounts_holder_idx on ledger.accounts (holder_id, code) where holder_id is not null;
create index accounts_code_prefix_idx on ledger.accounts (code text_pattern_ops);

-- Status changes are recorded, never overwritten; accounts.status is the latest of them.
create table ledger.account_status_changes (
    id          bigint generated always as identity primary key,
    account_id  bigint not null references ledger.accounts (id),
    status      text not null check (status in ('open', 'frozen', 'closed')),
    reason      text not null default '',
    changed_at  timestamptz not null default clock_timestamp()
);

create index account_status_changes_account_idx on ledger.account_status_changes (account_id, id);

-- Balance projection: a cache of what the entries sum to, updated in the same transaction.
create table ledger.balances (
    account_id      bigint primary key references ledger.accounts (id),
    version         bigint not null default 0,
    posted_debits   bigint not null default 0,
    posted_credits  bigint not null default 0,
    pending_debits  bigint not null default 0,
    pending_credits bigint not null default 0,
    last_hash       bytea  not null default decode(repeat('00', 32), 'hex')
);

-- Transactions -----------------------------------------------------------------------------------

create table ledger.transactions (
    id               bigint generated always as identity primary key,
    idempotency_key  text not null unique check (length(idempotency_key) between 1 and 200),
    fingerprint      bytea not null,
    kind             text not null check (kind ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$' and length(kind) <= 100),
    description      text not null default '' check (length(description) <= 1000),
    effective_at     timestamptz not null,
    recorded_at      timestamptz not null default clock_timestamp(),
    metadata         jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    is_hold          boolean not null default false,
    expires_at       timestamptz,
    reverses_id      bigint references ledger.transactions (id),
    resolves_hold_id bigint references ledger.transactions (id),
    hold_action      text check (hold_action in ('post', 'void')),
    -- The database transaction that wrote the row: entries may only join a transaction in the
    -- database transaction that created it, and the journal feed orders by it (see 0003).
    created_xact     xid8 not null default pg_current_xact_id(),
    check (expires_at is null or is_hold),
    check ((resolves_hold_id is null) = (hold_action is null)),
    check (not (is_hold and (reverses_id is not null or resolves_hold_id is not null)))
);

create index transactions_effective_idx on ledger.transactions (effective_at, id);
-- A transaction is reversed at most once and a hold resolved at most once. Partial indexes: most
-- transactions do neither, and a full index would take an entry for every one of them.
create unique index transactions_reverses_id_key on ledger.transactions (reverses_id)
    where reverses_id is not null;
create unique index transactions_resolves_hold_id_key on ledger.transactions (resolves_hold_id)
    where resolves_hold_id is not null;
create index transactions_xact_idx on ledger.transactions (created_xact, id);

create table ledger.entries (
    -- account_id and transaction_id are checked once per statement by
    -- entries_check_new_rows rather than row by row by foreign keys (whose row locks on
    -- accounts would serialise and slow every posting).
    account_id            bigint not null,
    account_version       bigint not null check (account_version > 0),
    id                    bigint generated always as identity,
    transaction_id        bigint not null,
    currency              text not null,
    side                  text not null check (side in ('debit', 'credit')),
    amount                bigint not null check (amount > 0),
    layer                 text not null check (layer in ('posted', 'pending')),
    effective_at          timestamptz not null,
    recorded_at           timestamptz not null,
    -- The account's balances on its normal side after this entry, in account version order.
    posted_balance_after  bigint not null,
    pending_balance_after bigint not null,
    -- sha256(previous entry's hash of this account || canonical encoding of this entry).
    hash                  bytea not null check (length(hash) = 32),
    -- Keyed by account so that an account's rows live together (and can be colocated on Citus).
    primary key (account_id, account_version)
);

create index entries_transaction_idx on ledger.entries (transaction_id);
create index entries_account_effective_idx on ledger.entries (account_id, effective_at, id);
create index entries_account_recorded_idx on ledger.entries (account_id, recorded_at, account_version);
-- Holds open at a past time are found among an account's pending legs only.
create index entries_account_pending_idx on ledger.entries (account_id, effective_at) where layer = 'pending';

-- Open holds per account: the projection of pending transactions not yet posted or voided.
create table ledger.open_holds (
    account_id  bigint not null references ledger.accounts (id),
    hold_id     bigint not null references ledger.transactions (id),
    -- Amounts the hold moves against (out) and towards (in) the account's normal side.
    amount_out  bigint not null check (amount_out >= 0),
    amount_in   bigint not null check (amount_in >= 0),
    expires_at  timestamptz,
    primary key (account_id, hold_id)
);

create index open_holds_hold_idx on ledger.open_holds (hold_id);

-- Closed periods: nothing may be posted with an effective time at or before closed_until.
create table ledger.period_closes (
    id           bigint generated always as identity primary key,
    closed_until timestamptz not null unique,
    closed_at    timestamptz not null default clock_timestamp()
);

-- Settings the engine reads; a row per name, values as text.
create table ledger.settings (
    name  text primary key,
    value text not null
);

insert into ledger.settings (name, value) values
    ('future_effective_max', '7 days'),   -- how far ahead an effective time may lie
    ('batch_size_max', '10000'),           -- transactions in one call of post_batch
    ('legs_per_transaction_max', '100'),
    ('hold_lifetime_max', '30 days');     -- also the expiry of a hold made without one

-- Hash chain -------------------------------------------------------------------------------------

-- The canonical encoding of an entry: fields joined by '|', timestamps as microseconds since
-- the Unix epoch, UTF-8. ledger/audit.py encodes the same bytes independently.
-- Declared stable (as concat_ws is) so that the planner inlines it.
create function ledger.entry_payload(
    p_account_id bigint, p_account_version bigint, p_transaction_id bigint, p_currency text,
    p_side text, p_amount bigint, p_layer text, p_effective_at timestamptz,
    p_recorded_at timestamptz, p_posted_after bigint, p_pending_after bigint
) returns bytea
language sql stable parallel safe
as $$
    select convert_to(concat_ws('|',
        p_account_id, p_account_version, p_transaction_id, p_currency, p_side, p_amount, p_layer,
        (extract(epoch from p_effective_at) * 1000000)::bigint,
        (extract(epoch from p_recorded_at) * 1000000)::bigint,
        p_posted_after, p_pending_after), 'UTF8')
$$;

create function ledger.chain_step(p_state bytea, p_seed bytea, p_payload bytea) returns bytea
language sql immutable parallel safe
as $$ select sha256(coalesce(p_state, p_seed) || p_payload) $$;

-- Used as a running window aggregate: chain(seed, payload) over (partition by account order by
-- version) yields every entry's hash in one set-based pass.
create aggregate ledger.chain(bytea, bytea) (sfunc = ledger.chain_step, stype = bytea);

-- Guards -----------------------------------------------------------------------------------------

create function ledger.raise_error(p_sqlstate text, p_message text, p_detail jsonb default '{}')
returns void
language plpgsql
as $$
begin
    raise exception using errcode = p_sqlstate, message = p_message, detail = p_detail::text;
end
$$;

create function ledger.refuse_change() returns trigger
language plpgsql
as $$
begin
    perform ledger.raise_error('LD015', format(
        '%I.%I is append-only: %s is refused; correct a mistake with a new, reversing transaction',
        tg_table_schema, tg_table_name, tg_op));
    return null;
end
$$;

-- Append-only tables refuse UPDATE, DELETE and TRUNCATE, for their owner too.
create procedure ledger.make_append_only(variadic p_tables text[])
language plpgsql
as $$
declare
    t text;
begin
    foreach t in array p_tables loop
        execute format('create trigger %I before update or delete on ledger.%I
                        for each statement execute function ledger.refuse_change()',
                       t || '_no_change', t);
        execute format('create trigger %I before truncate on ledger.%I
                        for each statement execute function ledger.refuse_change()',
                       t || '_no_truncate', t);
    end loop;
end
$$;

call ledger.make_append_only('transactions', 'entries', 'account_status_changes', 'period_closes');

-- Identity columns of an account never change; status changes go through account_status_changes.
create function ledger.guard_account_update() returns trigger
language plpgsql
as $$
begin
    if new.id <> old.id or new.code <> old.code or new.type <> old.type
       or new.normal_side <> old.normal_side or new.currency <> old.currency then
        perform ledger.raise_error('LD001', format(
            'account %s: id, code, type, normal side and currency never change', old.code),
            jsonb_build_object('field', 'code'));
    end if;
    return new;
end
$$;

create trigger accounts_guard_update before update on ledger.accounts
    for each row execute function ledger.guard_account_update();

create trigger accounts_no_delete before delete or truncate on ledger.accounts
    for each statement execute function ledger.refuse_change();

create function ledger.account_created() returns trigger
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
begin
    insert into ledger.balances (account_id) values (new.id);
    insert into ledger.account_status_changes (account_id, status, reason)
        values (new.id, new.status, 'created');
    return null;
end
$$;

create trigger accounts_created after insert on ledger.accounts
    for each row execute function ledger.account_created();

create function ledger.account_status_changed() returns trigger
language plpgsql security definer set search_path = pg_catalog, ledger
as $$
begin
    update ledger.accounts set status = new.status where id = new.account_id and status <> new.status;
    return null;
end
$$;

create trigger account_status_changes_apply after insert on ledger.account_status_changes
    for each row execute function ledger.account_status_changed();

-- Every transaction: effective time outside closed periods and not too far ahead, checked once
-- per statement over all its rows. The shared advisory lock makes a concurrent period close wait
-- for postings already under way.
create function ledger.check_transaction_time() returns trigger
language plpgsql
as $$
declare
    v_closed_until timestamptz;
    v_future_max interval;
    v_earliest timestamptz;
    v_latest timestamptz;
begin
    perform pg_advisory_xact_lock_shared(7260001);
    select min(n.effective_at), max(n.effective_at) into v_earliest, v_latest from new_transactions n;
    select closed_until into v_closed_until
      from ledger.period_closes order by closed_until desc limit 1;
    if v_closed_until is not null and v_earliest <= v_closed_until then
        perform ledger.raise_error('LD009', format(
            'effective time %s lies in a closed period (closed until %s)', v_earliest, v_closed_until),
            jsonb_build_object('effective_at', v_earliest, 'closed_until', v_closed_until));
    end if;
    select value::interval into v_future_max from ledger.settings where name = 'future_effective_max';
    if v_latest > clock_timestamp() + v_future_max then
        perform ledger.raise_error('LD001', format(
            'effective time %s is more than %s in the future', v_latest, v_future_max),
            jsonb_build_object('field', 'effectiveAt'));
    end if;
    return null;
end
$$;

create trigger transactions_check_time after insert on ledger.transactions
    referencing new table as new_transactions
    for each statement execute function ledger.check_transaction_time();

-- Invariant 1, at commit: debits equal credits per currency and layer, at least two legs, and
-- every leg carries its transaction's effective time.
create function ledger.check_transaction_balanced() returns trigger
language plpgsql
as $$
declare
    v_group record;
    v_legs bigint := 0;
begin
    if new.created_xact <> pg_current_xact_id() then
        perform ledger.raise_error('LD002', format(
            'transaction %s claims to be written by another database transaction', new.id));
    end if;
    for v_group in
        select e.currency, e.layer, count(*) as legs,
               sum(case when e.side = 'debit' then e.amount else -e.amount end) as net,
               bool_and(e.effective_at = new.effective_at) as same_time
          from ledger.entries e
         where e.transaction_id = new.id
         group by e.currency, e.layer
    loop
        v_legs := v_legs + v_group.legs;
        if v_group.net <> 0 then
            perform ledger.raise_error('LD002', format(
                'transaction %s does not balance: %s %s debits exceed credits by %s',
                new.id, v_group.currency, v_group.layer, v_group.net),
                jsonb_build_object('transaction_id', new.id, 'currency', v_group.currency,
                                   'layer', v_group.layer, 'difference', v_group.net));
        end if;
        if not v_group.same_time then
            perform ledger.raise_error('LD002', format(
                'transaction %s has a leg whose effective time differs from the transaction''s', new.id));
        end if;
    end loop;
    if v_legs < 2 then
        perform ledger.raise_error('LD002', format(
            'transaction %s has %s legs; a transaction needs at least two', new.id, v_legs),
            jsonb_build_object('transaction_id', new.id, 'legs', v_legs));
    end if;
    return null;
end
$$;

create constraint trigger transactions_balanced after insert on ledger.transactions
    deferrable initially deferred
    for each row execute function ledger.check_transaction_balanced();

-- New legs, checked once per statement: each belongs to an existing account and carries its
-- currency (invariant 3), and joins only a transaction written in the same database transaction,
-- so a committed (and so balanced) transaction can never be unbalanced later by appending a leg.
create function ledger.check_new_entries() returns trigger
language plpgsql
as $$
declare
    v_bad record;
begin
    select e.account_id, e.transaction_id, e.currency, a.id as found_account, a.currency as account_currency,
           t.id as found_transaction, t.created_xact = pg_current_xact_id() as same_xact
      into v_bad
      from new_entries e
      left join ledger.accounts a on a.id = e.account_id
      left join ledger.transactions t on t.id = e.transaction_id
     where a.id is null or t.id is null or a.currency <> e.currency or t.created_xact <> pg_current_xact_id()
     limit 1;
    if not found then
        return null;
    elsif v_bad.found_account is null then
        perform ledger.raise_error('LD004', format('a leg names account id %s, which does not exist', v_bad.account_id));
    elsif v_bad.found_transaction is null then
        perform ledger.raise_error('LD013', format('a leg names transaction %s, which does not exist', v_bad.transaction_id));
    elsif v_bad.currency <> v_bad.account_currency then
        perform ledger.raise_error('LD003', format('a leg in %s on account id %s, which is in %s',
                                   v_bad.currency, v_bad.account_id, v_bad.account_currency));
    end if;
    perform ledger.raise_error('LD002', format(
        'transaction %s is already committed; legs cannot be added to it', v_bad.transaction_id));
    return null;
end
$$;

create trigger entries_check_new_rows after insert on ledger.entries
    referencing new table as new_entries
    for each statement execute function ledger.check_new_entries();

-- Privileges: the application reads everything and writes the journal only through functions.
revoke all on all tables in schema ledger from public;
grant select on all tables in schema ledger to ledger_app;
grant insert on ledger.accounts, ledger.account_status_changes to ledger_app;
grant update (name, min_balance, max_balance, metadata) on ledger.accounts to ledger_app;
alter default privileges in schema ledger grant select on tables to ledger_app;
