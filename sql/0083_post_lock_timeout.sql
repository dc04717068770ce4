-- How long ledger.post_batch waits on a row another transaction holds when its caller set no
-- lock_timeout of its own (the API's connections set theirs). Past it the batch is refused with
-- LockNotAvailable, a retryable LOCK_TIMEOUT to the caller.
insert into ledger.settings (name, value) values ('post_lock_timeout', '2s');
