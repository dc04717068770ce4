-- The key that signs the cursors the server must trust (docs/design.md, "Cursors"), used when
-- LEDGER_CURSOR_KEY is not set. One row, made here from pg_strong_random (gen_random_uuid: two
-- of them give 244 random bits), so that every process of a deployment signs with the same key,
-- restarts keep issued cursors valid, and no reader ever has to write it. Append-only: a key
-- once issued never changes under a cursor signed with it.

create table ledger.cursor_key (
    one        boolean primary key default true check (one),
    key        bytea not null check (length(key) >= 16),
    created_at timestamptz not null default clock_timestamp()
);

revoke all on ledger.cursor_key from public;
grant select on ledger.cursor_key to ledger_app;

insert into ledger.cursor_key (key)
values (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
