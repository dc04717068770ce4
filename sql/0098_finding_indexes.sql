-- Finding transactions and accounts (docs/design.md, "Finding things"). A page of transactions
-- is read newest first (id descending); each filter has an index that serves it:
--   kind          transactions (kind, id): a backward scan of one kind stops after a page
--   accountCode   entries (account_id, transaction_id): the same for one account's transactions
--   metadata      GIN (jsonb_path_ops) over transactions.metadata and accounts.metadata
--   effective     transactions (effective_at, id), from 0001
--   recorded      transactions (recorded_at, id)
create index transactions_kind_idx on ledger.transactions (kind, id);
create index transactions_recorded_idx on ledger.transactions (recorded_at, id);
-- The GIN indexes take each insert directly (fastupdate off): with the default, new rows wait in a
-- pending list that every containment query scans row by row until a vacuum merges it, so a search
-- for one row cost tens of milliseconds on a freshly posted journal (bench/bench_finding.py).
create index transactions_metadata_idx on ledger.transactions using gin (metadata jsonb_path_ops)
    with (fastupdate = off);
create index entries_account_transaction_idx on ledger.entries (account_id, transaction_id);
create index accounts_metadata_idx on ledger.accounts using gin (metadata jsonb_path_ops)
    with (fastupdate = off);
